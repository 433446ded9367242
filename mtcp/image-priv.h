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

/* The helper threads a writer runs while it writes pages: the I/O helper,
 * the hasher and one packing thread per CPU (or CRYO_THREADS). */
struct image_writer;
int image_writer_threads(const struct image_writer *w);
/* The writer's scratch mapping (slots, buffers, stacks, zstd workspaces),
 * given back to the kernel at the end of every stream. */
void *image_writer_scratch(const struct image_writer *w, size_t *len);

/* At most this many runs in one PAGES record: one per page of a full chunk. */
#define IMAGE_PAGES_MAX_RUNS (IMAGE_CHUNK_MAX / IMAGE_PAGE_SIZE)

/* ---- Sealing (doc/image-format.md, "Encryption") ---- */

/* The nonce of record recno (the HEADER is record 0) of a stream with this
 * salt: the salt's 8 bytes, then recno's 4, little-endian. */
static inline void image_seal_nonce(uint8_t iv[IMAGE_SEAL_NONCE_LEN], uint64_t salt, uint32_t recno)
{
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(salt >> (8 * i));
	for (int i = 0; i < 4; i++)
		iv[8 + i] = (uint8_t)(recno >> (8 * i));
}

/* The additional authenticated data of a sealed record: its header's type
 * (4 bytes) and len (8 bytes, the sealed length), little-endian. */
#define IMAGE_SEAL_AAD_LEN 12
static inline void image_seal_aad(uint8_t aad[IMAGE_SEAL_AAD_LEN], uint32_t type, uint64_t len)
{
	for (int i = 0; i < 4; i++)
		aad[i] = (uint8_t)(type >> (8 * i));
	for (int i = 0; i < 8; i++)
		aad[4 + i] = (uint8_t)(len >> (8 * i));
}

/* The HEADER's key check value: the first 16 bytes of
 * SHA-256(IMAGE_KEY_CHECK_TEXT || key). Allocates inside OpenSSL. 0, or -1
 * after logging. */
/* Seals the payload iov[0..n) (plen bytes in all) of record recno of this
 * type, in a stream with this salt, into out: plen bytes of ciphertext,
 * then the 16-byte tag. aead is an EVP_CIPHER_CTX set up for AES-256-GCM
 * encryption with the key. Never allocates. 0, or -1 after logging. */
struct evp_cipher_ctx_st;
struct iovec;
int image_seal(struct evp_cipher_ctx_st *aead, uint64_t salt, uint64_t recno, uint32_t type,
	       const struct iovec *iov, int n, size_t plen, uint8_t *out);

int image_key_check(const uint8_t key[IMAGE_SEAL_KEY_LEN], uint8_t out[IMAGE_KEY_CHECK_LEN]);

#endif /* CRYO_MTCP_IMAGE_PRIV_H */
