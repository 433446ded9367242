/* Internals of the image format modules (crc32c.c, image.c, image_read.c,
 * cryo_image.c) and their unit tests. Not for use outside mtcp/. */
#ifndef CRYO_MTCP_IMAGE_PRIV_H
#define CRYO_MTCP_IMAGE_PRIV_H
#include <stddef.h>
#include <stdint.h>
#include "mtcp/image.h"

/* The two implementations behind image_crc32c(), exposed so the tests can
 * check they agree. Same contract as image_crc32c(); image_crc32c_hw() may
 * only be called when image_crc32c_hw_ok() is true. */
uint32_t image_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t image_crc32c_hw(uint32_t crc, const void *buf, size_t len);
/* 1 if the CPU has SSE4.2 (the crc32 instruction), else 0. */
int image_crc32c_hw_ok(void);

/* At most this many runs in one PAGES record: one per page of a full chunk. */
#define IMAGE_PAGES_MAX_RUNS (IMAGE_CHUNK_MAX / IMAGE_PAGE_SIZE)

#endif /* CRYO_MTCP_IMAGE_PRIV_H */
