/* struct cryo_restart_info: the one object the restorer writes into the
 * restored process's memory. It lives in libcryo.so (its address is saved
 * in the image's PROCESS record) and tells the library, once the threads
 * resume, that this is a restart and how to reach the coordinator.
 * Freestanding-safe: fixed-width fields, no pointers. */
#ifndef CRYO_MTCP_RESTART_INFO_H
#define CRYO_MTCP_RESTART_INFO_H
#include <stdint.h>

#define CRYO_RESTART_MAGIC 0x7472617473657263ull	/* "crestart" */

#define CRYO_RESTART_F_MIGRATED	0x1u	/* the image came over a migration stream */
#define CRYO_RESTART_F_KEEP_STDIO	0x2u	/* cryo_restart --keep-stdio: reopen the original stdio */
#define CRYO_RESTART_F_STRICT_FILES	0x4u	/* --strict-files: a vanished file refuses the restart */

struct cryo_restart_info {
	uint64_t magic;		/* CRYO_RESTART_MAGIC once filled by the restorer */
	uint32_t flags;		/* CRYO_RESTART_F_* */
	int32_t coord_port;
	uint64_t blob_start, blob_len;	/* the restorer's mapping, to unmap */
	uint64_t t_src_suspend_ns;	/* CLOCK_REALTIME: source suspended */
	uint64_t t_restart_ns;		/* CLOCK_REALTIME: cryo_restart started */
	uint64_t stream_bytes;		/* image bytes read */
	int32_t log_level;		/* from the restarting environment, -1 = keep */
	uint32_t nprocs;		/* processes in the checkpoint */
	char coord_host[256];		/* numeric address of the coordinator */
	char log_file[1024];		/* CRYO_LOG_FILE at restart, "" = stderr */
};
_Static_assert(sizeof(struct cryo_restart_info) == 1344, "keep the restorer and libcryo in step");

#endif /* CRYO_MTCP_RESTART_INFO_H */
