/* Loading the image codec (libcryo-image.so) into the application on first
 * use; see codec.h. */
#define LOG_PREFIX "codec: "
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "mtcp/codec.h"
#include "mtcp/log.h"

const struct codec_ops *codec;

void codec_sync_log(void)
{
	if (codec) {
		codec->log_setup(log_level_cur, log_fd());
		codec->log_set_ident("libcryo");
	}
}

int codec_load(void)
{
	char path[PATH_MAX];
	const struct codec_ops *ops;
	const char *slash;
	Dl_info info;
	void *h;

	if (codec)
		return 0;
	if (!dladdr((void *)codec_load, &info) || !info.dli_fname || !(slash = strrchr(info.dli_fname, '/'))) {
		log_err("cannot tell where libcryo.so is, to load %s", CODEC_LIB);
		return -1;
	}
	snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname, CODEC_LIB);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		log_err("cannot load the image codec: %s", dlerror());
		return -1;
	}
	ops = dlsym(h, CODEC_SYMBOL);
	if (!ops || ops->abi != CODEC_ABI) {
		log_err("%s is not the image codec of this libcryo (ABI %u, want %u)", path,
			ops ? ops->abi : 0, CODEC_ABI);
		dlclose(h);
		return -1;
	}
	codec = ops;
	codec_sync_log();
	return 0;
}
