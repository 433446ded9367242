# Shared by the fake cryo programs in this folder. They stand in for
# build/bin/cryo_* so that test/integration/selftest.sh can check the
# runner (run.sh) before the real engine exists: same command lines, same
# files, but a "checkpoint" records how many lines the program has printed
# and a "restart" runs the program again from the start, answering its
# early @@READY markers itself and hiding the output the image already had.
# Only for deterministic test programs; never used by `make check`.
FAKE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FAKE_REG=${FAKECRYO_REG:-/tmp/fakecryo.$(id -u)}
FAKE_TAG=${FAKECRYO_TAG:-0}
mkdir -p "$FAKE_REG"

fake_die() { echo "fake $(basename "$0"): $*" >&2; exit 1; }

# fake_state PORT: the state folder of the coordinator on PORT.
fake_state() {
	local ck
	ck=$(cat "$FAKE_REG/$1" 2>/dev/null) || fake_die "no fake coordinator on port $1"
	STATE=$ck/.fake
	CKDIR=$ck
}

fake_port_of() { REPLY=${1##*:}; }
