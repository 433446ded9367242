/* Image encryption keys: loading the 32-byte AES-256 key named by
 * CRYO_KEY_FILE or --key-file, for libcryo.so (mtcp/ckpt_thread.c),
 * cryo_restart and cryo_image. Hosted code; linked into libcryo-common.a. */
#ifndef CRYO_MTCP_KEY_H
#define CRYO_MTCP_KEY_H
#include <stddef.h>
#include <stdint.h>

#define KEY_LEN 32		/* AES-256 */
#define KEY_ENV "CRYO_KEY_FILE"

/* Reads the key in the file at path into out: the file holds exactly 32 raw
 * bytes, or 64 hex digits with an optional final newline. It must be a
 * regular file that neither group nor others may read or write (mode 0600
 * or stricter, as for ssh keys). Returns 0, or -1 after logging one line
 * naming the file (never the key); out is then zeroed. Every copy of the
 * key made on the way is wiped. Does not allocate; not async-signal-safe
 * (logging aside, it only makes system calls, so it may run with threads
 * frozen). */
int key_load(const char *path, uint8_t out[KEY_LEN]);

/* key_load() for the file named by $CRYO_KEY_FILE. Returns 1 with the key
 * in out, 0 if the variable is unset or empty (no key), -1 after logging. */
int key_load_env(uint8_t out[KEY_LEN]);

/* Parses a key file's contents (len bytes): 32 raw bytes, or 64 hex digits
 * plus an optional '\n'. 0, or -1 (not logged: the caller names the file). */
int key_parse(const uint8_t *buf, size_t len, uint8_t out[KEY_LEN]);

/* Zeroes n bytes at p in a way the compiler may not drop. */
void key_wipe(void *p, size_t n);
#endif /* CRYO_MTCP_KEY_H */
