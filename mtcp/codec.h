/* The image codec as libcryo.so uses it. The writer and key loading (zstd,
 * OpenSSL) live in libcryo-image.so, beside libcryo.so, which is loaded
 * with dlopen at the first checkpoint: a program that is never
 * checkpointed (every short-lived exec'd child of a shell or a build) then
 * does not pay for loading those libraries. Each entry is the function of
 * mtcp/image.h or mtcp/key.h of the same name. */
#ifndef CRYO_MTCP_CODEC_H
#define CRYO_MTCP_CODEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mtcp/image.h"

#define CODEC_ABI 2	/* bump when struct codec_ops changes */
#define CODEC_LIB "libcryo-image.so"
#define CODEC_SYMBOL "cryo_codec_ops"

struct codec_ops {
	uint32_t abi;		/* CODEC_ABI */
	struct image_writer *(*writer_new)(int level);
	void (*writer_free)(struct image_writer *w);
	int (*writer_prepare)(struct image_writer *w);
	int (*writer_set_key)(struct image_writer *w, const uint8_t *key);
	void (*writer_set_live)(struct image_writer *w, bool live);
	void (*writer_begin)(struct image_writer *w, int fd);
	int (*writer_record)(struct image_writer *w, uint32_t type, const void *a, size_t alen,
			     const void *b, size_t blen);
	int (*writer_pages)(struct image_writer *w, uint32_t area, uint64_t first, const void *addr,
			    uint64_t npages);
	int (*writer_finish)(struct image_writer *w);
	uint64_t (*writer_bytes)(const struct image_writer *w);
	void (*writer_restarted)(struct image_writer *w);
	int (*key_load)(const char *path, uint8_t out[32]);
	/* The library's own logger, kept in step with libcryo's. */
	void (*log_setup)(int level, int fd);
	void (*log_set_ident)(const char *ident);
	int (*writer_digest)(const struct image_writer *w, uint8_t out[32]);
};

/* NULL until codec_load() succeeded. */
extern const struct codec_ops *codec;

/* Loads libcryo-image.so from libcryo.so's directory (allocates: call while
 * the threads run). Idempotent. 0, or -1 after logging. */
int codec_load(void);
/* Points the codec's logger at libcryo's level and fd (after a restart). */
void codec_sync_log(void);

#endif /* CRYO_MTCP_CODEC_H */
