/* dlopen: the dynamic loader's state across checkpoint/restart. Before the
 * first checkpoint the program dlopens libz (a system library neither it
 * nor libcryo links), libzstd and libm, and keeps function pointers from
 * dlsym. After each restart it calls them through the saved pointers and
 * looks them up again (dlsym, dladdr). libz is dlclosed (unmapped) before
 * the second checkpoint and dlopened again after that restart, and libzstd
 * is closed and reopened after the last one: both need the loader's lists
 * and locks intact in the restored process. */
#include "../lib/harness.h"
#include <dlfcn.h>

typedef unsigned long (*crc32_fn)(unsigned long, const unsigned char *, unsigned);
typedef const char *(*zver_fn)(void);
typedef unsigned (*zstdver_fn)(void);
typedef double (*cos_fn)(double);

static void *open_lib(const char *name)
{
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		t_fail("dlopen %s: %s (scripts/deps.sh installs it)", name, dlerror());
	return h;
}

static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (!p)
		t_fail("dlsym %s: %s", name, dlerror());
	return p;
}

static const char *base_of(void *fn)
{
	Dl_info di;
	const char *s;

	if (!dladdr(fn, &di) || !di.dli_fname)
		t_fail("dladdr found no library");
	s = strrchr(di.dli_fname, '/');
	return s ? s + 1 : di.dli_fname;
}

static unsigned long crc_of(crc32_fn crc)
{
	static const unsigned char text[] = "cryo checkpoints processes";

	return crc(crc(0, NULL, 0), text, sizeof(text) - 1);
}

int main(int argc, char **argv)
{
	void *hm, *hz, *hzs;
	crc32_fn crc;
	zver_fn zver;
	zstdver_fn zsv;
	cos_fn cosp;
	unsigned long crc0;
	unsigned zsv0;

	t_init(argc, argv);
	hm = open_lib("libm.so.6");
	hz = open_lib("libz.so.1");
	hzs = open_lib("libzstd.so.1");
	cosp = (cos_fn)sym(hm, "cos");
	crc = (crc32_fn)sym(hz, "crc32");
	zver = (zver_fn)sym(hz, "zlibVersion");
	zsv = (zstdver_fn)sym(hzs, "ZSTD_versionNumber");
	crc0 = crc_of(crc);
	zsv0 = zsv();
	T_CHECK(zver()[0] >= '1', "zlibVersion");
	printf("loaded libm, libz and libzstd; crc32 %08lx; cos(0) %.1f; in %s\n", crc0, cosp(0.0),
	       base_of((void *)crc));

	for (int k = 1; k <= 3; k++) {
		if (k == 2) {
			T_CHECK(dlclose(hz) == 0, "dlclose libz: %s", dlerror());
			crc = NULL;
		}
		t_ready(k);
		printf("READY %d\n", k);
		T_CHECK(cosp(0.0) == 1.0, "cos through the saved pointer");
		T_CHECK(zsv() == zsv0, "ZSTD_versionNumber through the saved pointer");
		if (!crc) {
			hz = open_lib("libz.so.1");
			crc = (crc32_fn)sym(hz, "crc32");
			printf("  libz, closed before the checkpoint, dlopened again\n");
		}
		T_CHECK(crc_of(crc) == crc0, "crc32");
		T_CHECK(sym(hz, "crc32") == (void *)crc, "dlsym crc32 moved");
		T_CHECK(strcmp(base_of((void *)crc), "libz.so.1") == 0, "dladdr says %s",
			base_of((void *)crc));
		T_CHECK(dlsym(RTLD_DEFAULT, "printf") != NULL, "dlsym(RTLD_DEFAULT, printf)");
		printf("  saved pointers, dlsym and dladdr work\n");
		if (k == 3) {
			T_CHECK(dlclose(hzs) == 0, "dlclose libzstd: %s", dlerror());
			hzs = open_lib("libzstd.so.1");
			zsv = (zstdver_fn)sym(hzs, "ZSTD_versionNumber");
			T_CHECK(zsv() == zsv0, "ZSTD_versionNumber after reopening");
			printf("  libzstd closed and opened again\n");
		}
	}
	dlclose(hzs);
	dlclose(hz);
	dlclose(hm);
	t_pass();
}
