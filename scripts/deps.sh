#!/bin/sh
# scripts/deps.sh: installs the Debian packages cryo needs to build and test
# (`make demo` and `make check` run it first). Quick no-op when everything
# is there; as root it runs apt-get (update only when something is
# missing); as another user it only checks and says what to install.
#
# Why each package:
#   gcc make binutils libc6-dev pkg-config   build (objcopy, nm, readelf for
#                                            the freestanding restorer)
#   libzstd-dev      image compression (zstd)
#   libssl-dev       image checksums and encryption (OpenSSL: SHA-256, AES-GCM)
#   libelf-dev       cryo_image export-core (ELF core files)
#   libcmocka-dev    unit tests
#   zlib1g           a library the dlopen test program loads at run time
#   python3 perl     interpreters checkpointed by the integration tests
#   gdb              looking inside images exported as core files, debugging
#   util-linux       setpriv (the unprivileged test pass)
#   passwd           useradd (creates the test user cryotest)
#   procps iproute2  ps, ss: inspecting processes and ports
#   coreutils diffutils findutils grep sed   the test scripts
set -u

PKGS="gcc make binutils libc6-dev pkg-config libzstd-dev libssl-dev libelf-dev \
libcmocka-dev zlib1g python3 perl gdb util-linux passwd procps iproute2 \
coreutils diffutils findutils grep sed bash"

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: not a Debian system; install the equivalents of: $PKGS" >&2
	exit 0
fi

missing=
for p in $PKGS; do
	case $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages:$missing" >&2
	echo "deps.sh: install them as root: apt-get install -y$missing" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "deps.sh: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
	{ echo "deps.sh: apt-get install$missing failed" >&2; exit 1; }
echo "deps.sh: done"
