/* The coordinator's wire protocol, shared by cryo_coordinator, cryo_command,
 * cryo_launch, cryo_restart and libcryo.so (whose checkpoint thread speaks it
 * while the application is frozen: the send/recv functions below never
 * allocate and are async-signal-safe). doc/protocol.md is the specification.
 *
 * Every message is a struct coord_hdr followed by `len` payload bytes; the
 * payload is one of the fixed structs below (little-endian, size-checked).
 * A connection starts with HELLO_PROC (a process of the computation) or
 * HELLO_CMD (a command client); the coordinator answers WELCOME. */
#ifndef CRYO_COORDINATOR_PROTOCOL_H
#define CRYO_COORDINATOR_PROTOCOL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define COORD_MAGIC		0x43595243u	/* "CRYC" little-endian */
#define COORD_PROTO_VERSION	1
#define COORD_DEFAULT_HOST	"127.0.0.1"
#define COORD_DEFAULT_PORT	7790
#define COORD_MSG_MAX		16384		/* largest payload */
#define COORD_PATH_MAX		4096
#define COORD_TEXT_MAX		8192

struct coord_hdr {
	uint32_t magic;		/* COORD_MAGIC */
	uint16_t type;		/* enum coord_type */
	uint16_t version;	/* COORD_PROTO_VERSION */
	uint32_t len;		/* payload bytes, <= COORD_MSG_MAX */
	uint32_t reserved;
};
_Static_assert(sizeof(struct coord_hdr) == 16, "wire layout changed: bump COORD_PROTO_VERSION");

enum coord_type {
	COORD_HELLO_PROC = 1,	/* proc -> coord: struct coord_hello_proc */
	COORD_HELLO_CMD = 2,	/* cmd -> coord: no payload */
	COORD_WELCOME = 3,	/* coord -> proc or cmd: struct coord_welcome */
	COORD_COMMAND = 4,	/* cmd -> coord: struct coord_command */
	COORD_REPLY = 5,	/* coord -> cmd: struct coord_reply + text */
	COORD_BARRIER = 6,	/* coord -> proc: struct coord_barrier */
	COORD_BARRIER_DONE = 7,	/* proc -> coord: struct coord_barrier_done */
	COORD_REPORT = 8,	/* proc -> coord: struct coord_report (a migration arrived) */
	COORD_KILL = 9,		/* coord -> proc: exit now; no payload */
	COORD_PIDMAP = 10,	/* coord -> restarted proc: struct coord_pidmap, before RESTART */
};

/* Flags of coord_hello_proc. */
#define COORD_PROC_RESTARTED	0x1u	/* joining after cryo_restart */
#define COORD_PROC_EXIT_AFTER	0x2u	/* launched with --exit-after-ckpt */
#define COORD_PROC_EXEC		0x4u	/* the same process (upid) after exec, on a new
					 * connection: it replaces its old entry */

struct coord_hello_proc {
	uint64_t upid;		/* unique process id (stays the same across restarts) */
	uint64_t comp_id;	/* computation id; 0 for a new launch (coordinator assigns) */
	uint32_t pid;		/* virtual pid */
	uint32_t real_pid;	/* kernel pid now */
	uint32_t ppid;		/* virtual parent pid */
	uint32_t flags;		/* COORD_PROC_* */
	uint32_t generation;	/* restarted: generation of the image; else 0 */
	uint32_t nprocs;	/* restarted: processes in that checkpoint; else 0 */
	char host[64];
	char program[64];
	/* Process group and session, virtual (as the program knows them) and
	 * kernel ids now: after a restart they make the group entries of the
	 * pid map (a group whose leader is gone or outside the computation). */
	uint32_t pgid, real_pgid;
	uint32_t sid, real_sid;
};
_Static_assert(sizeof(struct coord_hello_proc) == 184, "wire layout changed");

/* Status of coord_welcome and coord_reply. */
enum coord_status {
	COORD_OK = 0,
	COORD_ERR = 1,		/* see text */
	COORD_REJECT = 2,	/* a process may not join (see text) */
};

struct coord_welcome {
	int32_t status;		/* enum coord_status */
	uint32_t generation;	/* last checkpoint generation of the computation */
	uint64_t comp_id;	/* computation id the process belongs to */
	uint32_t interval;	/* checkpoint interval, seconds, 0 = none */
	uint32_t coord_pid;
	char ckptdir[COORD_PATH_MAX];	/* coordinator's checkpoint directory */
	char text[256];		/* reason when rejected */
	uint32_t npids;		/* pid map entries that follow in PIDMAP messages (a
				 * computation that was restarted), 0 if none */
	uint32_t reserved2;
};
_Static_assert(sizeof(struct coord_welcome) == 4384, "wire layout changed");

enum coord_op {
	COORD_OP_STATUS = 1,
	COORD_OP_LIST = 2,
	COORD_OP_CHECKPOINT = 3,	/* flags: COORD_CMD_BLOCKING */
	COORD_OP_INTERVAL = 4,		/* arg: seconds, 0 = off */
	COORD_OP_KILL = 5,		/* kill the computation, keep the coordinator */
	COORD_OP_QUIT = 6,		/* kill the computation and exit */
	COORD_OP_MIGRATE = 7,		/* text: HOST:PORT; flags: PRECOPY/POSTCOPY */
};

#define COORD_CMD_JSON		0x1u	/* reply text is JSON */
#define COORD_CMD_BLOCKING	0x2u	/* reply when the checkpoint is complete */
#define COORD_CMD_PRECOPY	0x4u
#define COORD_CMD_POSTCOPY	0x8u
#define COORD_CMD_FULL		0x10u	/* CHECKPOINT: full images (restart the chains) */
#define COORD_CMD_COW		0x20u	/* checkpoint: copy-on-write (COORD_BAR_COW) */

struct coord_command {
	uint32_t op;		/* enum coord_op */
	uint32_t flags;		/* COORD_CMD_* */
	int64_t arg;
	char text[256];
};
_Static_assert(sizeof(struct coord_command) == 272, "wire layout changed");

/* Followed by UTF-8 text (not NUL-terminated). len counts the text bytes
 * from this message to the end of the reply: a reply longer than one
 * message can carry is split over several REPLY messages, each with the
 * same status and len = what is left; the reply is complete when a
 * message carries all of its len (hdr.len == sizeof(coord_reply) + len). */
struct coord_reply {
	int32_t status;		/* enum coord_status */
	uint32_t len;
};
_Static_assert(sizeof(struct coord_reply) == 8, "wire layout changed");

/*
 * The checkpoint barriers, in order. The coordinator sends BARRIER(phase) to
 * every participant and waits for BARRIER_DONE(phase) from all before the
 * next phase. A failure (status != 0) or a participant lost before COMMIT
 * aborts: every remaining participant gets RESUME with COORD_BAR_ABORT
 * (discard the temporary image, put drained data back, run on).
 * Every phase carries the checkpoint's flags (MIGRATE, EXIT_AFTER, COW). In a
 * copy-on-write checkpoint (COORD_BAR_COW, or any WRITE ack with
 * COORD_DONE_COW) RELEASE comes between WRITE and COMMIT. RESUME
 * is not waited for: a RESUME ack is allowed and ignored.
 * Restarted processes join with COORD_PROC_RESTARTED; once all `nprocs` of
 * their checkpoint have joined, they get RESTART, REFILL, RESUME. A failed
 * or lost process during that sequence gets the others COORD_KILL.
 * doc/protocol.md has the full rules.
 */
enum coord_phase {
	COORD_PH_SUSPEND = 1,	/* freeze every user thread */
	COORD_PH_ELECT = 2,	/* choose one owner per shared resource */
	COORD_PH_DRAIN = 3,	/* read out data in flight */
	COORD_PH_WRITE = 4,	/* write the image (temporary name or stream) */
	COORD_PH_COMMIT = 5,	/* rename temporary images to their final names */
	COORD_PH_REFILL = 6,	/* put drained data back */
	COORD_PH_RESUME = 7,	/* release the user threads */
	COORD_PH_RESTART = 8,	/* restarted processes: rebuild kernel objects */
	COORD_PH_RELEASE = 9,	/* copy-on-write only, between WRITE and COMMIT:
				 * release the user threads, finish the image */
};

#define COORD_BAR_ABORT		0x1u	/* RESUME after a failed checkpoint */
#define COORD_BAR_MIGRATE	0x2u	/* WRITE goes to text = HOST:PORT */
#define COORD_BAR_EXIT_AFTER	0x4u	/* exit after COMMIT instead of resuming */
#define COORD_BAR_FULL		0x8u	/* a full image, not an incremental one */
#define COORD_BAR_COW		0x10u	/* copy-on-write: WRITE forks a writer, RELEASE follows */

struct coord_barrier {
	uint32_t phase;		/* enum coord_phase */
	uint32_t generation;	/* checkpoint number */
	uint32_t flags;		/* COORD_BAR_* */
	uint32_t nprocs;	/* participants in this checkpoint */
	char text[COORD_PATH_MAX];	/* SUSPEND/WRITE: checkpoint dir or HOST:PORT */
	uint32_t attempt;	/* of this generation (a checkpoint starts again: 1, 2...) */
};
_Static_assert(sizeof(struct coord_barrier) == 4116, "wire layout changed");

#define COORD_DONE_EXITING	0x1u	/* COMMIT: this process exits now */
#define COORD_DONE_COW		0x2u	/* WRITE: a writer child is writing; RELEASE needed */

struct coord_barrier_done {
	uint32_t phase;
	uint32_t generation;
	int32_t status;		/* 0 = done; else failed, see text */
	uint32_t flags;		/* COORD_DONE_* */
	uint64_t bytes;		/* WRITE: image bytes */
	uint64_t ns;		/* WRITE: time spent writing */
	char text[COORD_PATH_MAX];	/* WRITE: final image path; failure: reason */
	uint32_t attempt;	/* the BARRIER's, echoed */
	uint32_t pad;
};
_Static_assert(sizeof(struct coord_barrier_done) == 4136, "wire layout changed");

/* Sent by a process that arrived by live migration, once it runs again. */
struct coord_report {
	uint64_t total_ns;	/* migration start on the source to running here */
	uint64_t downtime_ns;	/* source suspended to running here */
	uint64_t bytes;		/* stream bytes */
	uint32_t rounds;	/* pre-copy rounds (0 for stop-and-copy) */
	uint32_t pid;
};
_Static_assert(sizeof(struct coord_report) == 32, "wire layout changed");

/* Virtual pid (as the program knows it) -> kernel pid now, for every
 * process of a restarted group, and for every process group and session
 * they are in (vpid | COORD_PID_GROUP -> the group's or session's kernel
 * id). Sent before RESTART, in as many messages as needed (each at most
 * COORD_PIDMAP_MAX entries); the process adds them. The same map is sent,
 * after WELCOME, to every process that joins the computation later (a
 * child forked or exec'd after the restart). */
#define COORD_PID_GROUP 0x80000000u
struct coord_pid {
	uint32_t vpid;		/* | COORD_PID_GROUP for a group or session id */
	uint32_t real_pid;
};
_Static_assert(sizeof(struct coord_pid) == 8, "wire layout changed");

struct coord_pidmap {
	uint32_t n;		/* entries that follow */
	uint32_t reserved;
	struct coord_pid ents[];
};
_Static_assert(sizeof(struct coord_pidmap) == 8, "wire layout changed");

#define COORD_PIDMAP_MAX ((COORD_MSG_MAX - sizeof(struct coord_pidmap)) / sizeof(struct coord_pid))

/* ---- Helpers (coordinator/protocol.c) ---- */

/* Sends one message (header + payload), looping over short writes and
 * EINTR. 0, or -1 with errno set (nothing logged). Async-signal-safe. */
int coord_send(int fd, uint16_t type, const void *payload, uint32_t len);
/* Receives one message into buf (bufsize bytes). Waits at most timeout_ms
 * (-1 = forever) for it to start. Returns 1 with *hdr filled, 0 on orderly
 * EOF, -1 on error or timeout (errno ETIMEDOUT), a bad magic or version
 * (EPROTO) or a payload larger than bufsize (EMSGSIZE). Nothing is logged.
 * Async-signal-safe. */
int coord_recv(int fd, struct coord_hdr *hdr, void *buf, uint32_t bufsize, int timeout_ms);

/* Parses "HOST", "HOST:PORT", ":PORT" or "PORT" (missing parts keep the
 * values already in host/port). 0, or -1 if malformed. */
int coord_parse_addr(const char *s, char *host, size_t hostsz, int *port);
/* The default address: CRYO_COORD_HOST / CRYO_COORD_PORT, else
 * COORD_DEFAULT_HOST:COORD_DEFAULT_PORT. */
void coord_default_addr(char *host, size_t hostsz, int *port);
/* Resolves host:port to a socket address (may allocate: not for the
 * checkpoint path). 0, or -1 after logging. */
int coord_resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sslen);
/* Reads one reply, which may span several REPLY messages, into a
 * malloc'd NUL-terminated *text (the caller frees it) and its *status.
 * 0, or -1 with errno: ETIMEDOUT, ECONNRESET (the coordinator closed),
 * EPROTO (a malformed reply), ENOMEM. Nothing is logged. */
int coord_read_reply(int fd, int timeout_ms, int *status, char **text);
/* Resolves host:port and writes it numerically ("1.2.3.4:5", "[::1]:5")
 * into out, for the process that must connect without a resolver (the
 * checkpoint path cannot allocate). 0, or -1 (quiet: the caller says what
 * could not be resolved). */
int coord_numeric_addr(const char *host, int port, char *out, size_t outsz);
/* Connects a TCP socket (CLOEXEC, TCP_NODELAY) to a resolved address,
 * waiting at most timeout_ms. fd, or -1 with errno set (nothing logged).
 * Async-signal-safe. */
int coord_connect(const struct sockaddr_storage *ss, socklen_t sslen, int timeout_ms);
/* Resolve + connect + HELLO_CMD + WELCOME, as cryo_command does. fd, or -1
 * (quiet: the caller says what failed). */
int coord_open_cmd(const char *host, int port, int timeout_ms);
/* For cryo_launch and cryo_restart: if no coordinator answers at host:port
 * and the host is local, start `bindir/cryo_coordinator --daemon --port
 * PORT` and wait until it answers. 0, or -1 after logging. */
int coord_ensure(const char *host, int port, const char *bindir);
const char *coord_phase_name(uint32_t phase);

#endif /* CRYO_COORDINATOR_PROTOCOL_H */
