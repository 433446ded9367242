/* libcryo.so's constructor and its checkpoint thread.
 *
 * Before main(), the constructor reads the environment set by cryo_launch,
 * installs the park handler (threads.c), registers the process with the
 * coordinator and starts one checkpoint thread, which from then on only
 * answers the coordinator's barriers (coordinator/protocol.h):
 *
 *   SUSPEND  reserve memory, park every user thread
 *   ELECT, DRAIN   the plugins mark and drain shared objects
 *   WRITE    save the resume point of this thread, then write the image
 *            (to DIR/ckpt_<prog>_<upid>.cryo.tmp, with CRYO_INCREMENTAL=1
 *            DIR/ckpt_<prog>_<upid>.g<generation>.cryo.tmp, or to a
 *            migration socket)
 *   COMMIT   rename the image to its final name (or exit, after migration)
 *   REFILL   the plugins put drained data back
 *   RESUME   release the threads (after an abort: drop the temporary image)
 *
 * After a restart the restorer resumes this thread inside checkpoint_write()
 * with a return value of 1, in a new process: it waits for the user threads
 * to check in, drops the restorer's mapping, restores signal actions,
 * itimers and cwd, opens the share mailbox (plugin/share.h), runs the
 * plugins' restart hook, reconnects to the coordinator named by cryo_restart
 * and runs the plugins' restart_share, restart_refill and restart_resume
 * hooks at RESTART, REFILL and RESUME.
 *
 * From SUSPEND to RESUME the user threads are frozen at arbitrary points,
 * maybe inside malloc: nothing here allocates in between (the image writer
 * and every buffer are made ready before the threads are parked). */
#define LOG_PREFIX ""
#include <arpa/inet.h>
#include <errno.h>
#include <linux/futex.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "coordinator/protocol.h"
#include "mtcp/ckpt.h"
#include "mtcp/codec.h"
#include "mtcp/dirty.h"
#include "mtcp/cow.h"
#include "mtcp/key.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/util.h"
#include "mtcp/vpid.h"
#include "mtcp/wrap_exec.h"
#include "mtcp/wrap_signal.h"
#include "plugin/plugin.h"
#include "plugin/share.h"

#define ACK_OK "CRYO-OK\n"
#define ACK_LEN 8

struct cryo_restart_info cryo_restart_info_g;

/* Configuration, from the environment at start (and restart). */
static struct sockaddr_storage coord_addr;
static socklen_t coord_addrlen;
static char ckpt_dir[COORD_PATH_MAX];
static int exit_after;
static char lm_dest[COORD_PATH_MAX];	/* "IP:PORT" from LM_DEST_IP/LM_DEST_PORT */
static int compress_level = 1;
/* CRYO_KEY_FILE: the path is configuration; the key itself lives in scratch
 * memory, which no image holds and which comes back zeroed after a restart,
 * when prepare() reads the file again. Never in a log or the environment. */
static char key_path[COORD_PATH_MAX];
struct ckpt_key {
	int loaded;
	uint8_t key[KEY_LEN];
};
static struct ckpt_key *ckpt_key;
static int fd_base = 1000;

/* State of the computation, kept across restarts (it is in the image). */
static uint64_t upid, comp_id;
static uint32_t generation, nprocs;
static struct image_process saved_proc;
static char program[64];

/* State of the current checkpoint. */
static int coord_fd = -1;
/* Held by the checkpoint thread while it handles a message, and by a
 * thread that execs: a message is either handled whole by this program or
 * left whole in the socket for the next one. 0 free, 1 held, 2 contended. */
static volatile int msg_lock;
static struct image_writer *writer;
static int parked;
static int migrated_report;
static int restart_pending;	/* restarted, waiting for RESUME */
static int released_early;	/* copy-on-write: threads released at RELEASE */
static uint64_t t_suspend_ns;	/* CLOCK_REALTIME */
static uint64_t t_write_ns;	/* CLOCK_MONOTONIC: a cow checkpoint's WRITE began */
static char tmp_path[COORD_PATH_MAX], final_path[COORD_PATH_MAX];
static union {
	struct coord_barrier bar;
	char raw[COORD_MSG_MAX];
} msg;

static void *map_anon(size_t len)
{
	long p = sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (sys_failed(p)) {
		log_syserr((int)-p, "reserve %zu bytes", len);
		return NULL;
	}
	return (void *)p;
}

void *ckpt_mem(size_t len)
{
	return map_anon(len);
}

int ckpt_fd_base(void)
{
	return fd_base;
}

uint64_t ckpt_comp_id(void)
{
	return comp_id;
}

static int reserve_fd(int fd);

int ckpt_reserve_fd(int fd)
{
	return reserve_fd(fd);
}

void *ckpt_scratch(size_t len)
{
	void *p = map_anon(len);

	if (p)
		maps_exclude((uint64_t)(uintptr_t)p, (uint64_t)(uintptr_t)p + ((len + 4095) & ~4095ul));
	return p;
}

/* "IP:PORT" or "[IPv6]:PORT" to a socket address, without allocating. */
static int parse_numeric(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	long port;
	size_t hl;

	if (!colon || colon == s)
		return -1;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -1;
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -1;
}

static int reserve_fd(int fd)
{
	int nfd;

	if (fd < 0 || fd >= fd_base)
		return fd;
	nfd = util_move_fd(fd, fd_base);
	return nfd < 0 ? fd : nfd;
}

static void on_pidmap(const struct coord_pidmap *m, uint32_t len);

/* The n pid map entries that follow WELCOME in a restarted computation,
 * read before the program runs: its first getppid() must be right. */
static int read_pidmap(int fd, uint32_t n)
{
	struct coord_hdr hdr;
	uint32_t got = 0;

	while (got < n) {
		if (coord_recv(fd, &hdr, msg.raw, sizeof(msg.raw), 10000) != 1)
			return -1;
		if (hdr.type != COORD_PIDMAP) {
			errno = EPROTO;
			return -1;
		}
		on_pidmap((const struct coord_pidmap *)msg.raw, hdr.len);
		got += ((const struct coord_pidmap *)msg.raw)->n;
	}
	return 0;
}

/* Reads WELCOME (and the pid map that may follow) on fd. 0; -1 (logged,
 * fd closed) if none came, -2 if the coordinator refused this process. */
static int coord_welcome(int fd)
{
	struct coord_welcome *w = (struct coord_welcome *)msg.raw;
	struct coord_hdr hdr;

	if (coord_recv(fd, &hdr, msg.raw, sizeof(msg.raw), 10000) != 1 || hdr.type != COORD_WELCOME ||
	    hdr.len < sizeof(struct coord_welcome)) {
		log_warn("the coordinator did not answer the registration: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (w->status != COORD_OK) {
		w->text[sizeof(w->text) - 1] = '\0';
		log_err("the coordinator refused this process: %s", w->text);
		close(fd);
		errno = EPERM;
		return -2;
	}
	comp_id = w->comp_id;
	if (w->generation > generation)
		generation = w->generation;
	if (w->npids && read_pidmap(fd, w->npids) < 0) {
		log_warn("the coordinator did not send the pid map it announced: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return 0;
}

/* Connects and says HELLO. The fd, or -1 (logged). */
static int coord_hello(uint32_t flags)
{
	struct coord_hello_proc h;
	int fd;

	fd = coord_connect(&coord_addr, coord_addrlen, 5000);
	if (fd < 0) {
		log_warn("no coordinator answers: %s; this process runs on but cannot be checkpointed",
			 strerror(errno));
		return -1;
	}
	fd = reserve_fd(fd);
	memset(&h, 0, sizeof(h));
	h.upid = upid;
	h.comp_id = comp_id;
	h.pid = (uint32_t)vpid_self();
	h.real_pid = (uint32_t)vpid_kernel_pid();
	h.real_pgid = (uint32_t)sys_call1(__NR_getpgid, 0);
	h.real_sid = (uint32_t)sys_call1(__NR_getsid, 0);
	h.flags = flags | (exit_after ? COORD_PROC_EXIT_AFTER : 0);
	if (flags & COORD_PROC_RESTARTED) {
		/* The map is empty until PIDMAP: the virtual ids are the image's. */
		h.generation = generation;
		h.nprocs = nprocs;
		h.ppid = saved_proc.ppid;
		h.pgid = saved_proc.pgid;
		h.sid = saved_proc.sid;
	} else {
		/* the wrappers': virtual */
		h.ppid = (uint32_t)getppid();
		h.pgid = (uint32_t)getpgid(0);
		h.sid = (uint32_t)getsid(0);
	}
	gethostname(h.host, sizeof(h.host) - 1);
	nolibc_strlcpy(h.program, program, sizeof(h.program));
	if (coord_send(fd, COORD_HELLO_PROC, &h, sizeof(h)) < 0) {
		log_warn("the coordinator did not take the registration: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Connects and registers. The fd, -1 (logged), or -2 if refused. */
static int coord_register(uint32_t flags)
{
	int fd = coord_hello(flags), r;

	if (fd < 0)
		return -1;
	r = coord_welcome(fd);
	return r < 0 ? r : fd;
}

static void send_done(struct coord_barrier_done *d)
{
	if (coord_fd >= 0 && coord_send(coord_fd, COORD_BARRIER_DONE, d, sizeof(*d)) < 0)
		log_warn("lost the coordinator while answering %s", coord_phase_name(d->phase));
}

static void fail(struct coord_barrier_done *d, const char *why)
{
	d->status = 1;
	nolibc_strlcpy(d->text, why, sizeof(d->text));
}

/* Loads the key (once per process image; again after a restart) and hands
 * it to the writer. A bad key file fails the checkpoint: never a plain image
 * when a key was asked for. */
static int prepare_key(void)
{
	if (!key_path[0])
		return codec->writer_set_key(writer, NULL);
	if (!ckpt_key) {
		log_err("no memory for the image key: no checkpoints with %s", KEY_ENV);
		return -1;
	}
	if (!ckpt_key->loaded) {
		if (codec->key_load(key_path, ckpt_key->key) < 0)
			return -1;
		ckpt_key->loaded = 1;
	}
	return codec->writer_set_key(writer, ckpt_key->key);
}

static int prepare(void)
{
	if (threads_prepare() < 0 || plugin_run(PLUGIN_PRE_CKPT) < 0 || codec_load() < 0)
		return -1;
	if (!writer) {
		writer = codec->writer_new(compress_level);
		if (!writer)
			return -1;
		/* This thread's stack, the library's data and the writer itself
		 * change while they are written: copy each page as it is added, so
		 * its checksum and its bytes agree. */
		codec->writer_set_live(writer, true);
	}
	if (prepare_key() < 0)
		return -1;
	dirty_prepare();
	return codec->writer_prepare(writer);
}

static void fill_header(struct image_header *h, uint32_t flags, uint32_t nthreads, uint32_t nareas)
{
	struct utsname u;

	memset(h, 0, sizeof(*h));
	h->magic = IMAGE_MAGIC;
	h->version = IMAGE_VERSION;
	h->arch = IMAGE_ARCH_X86_64;
	h->page_size = IMAGE_PAGE_SIZE;
	h->flags = flags;
	h->time_ns = t_suspend_ns;
	h->nareas = nareas;
	h->nthreads = nthreads;
	h->generation = generation;
	if (uname(&u) == 0) {
		nolibc_strlcpy(h->kernel, u.release, sizeof(h->kernel));
		nolibc_strlcpy(h->hostname, u.nodename, sizeof(h->hostname));
	}
	nolibc_snprintf(h->build, sizeof(h->build), "cryo %s", CRYO_VERSION);
	nolibc_strlcpy(h->program, program, sizeof(h->program));
}

static int write_threads(struct image_writer *w, uint32_t *count)
{
	size_t n, i;
	struct ckpt_slot *s = threads_slots(&n), *self = threads_self();

	*count = 0;
	for (i = 0; i <= n; i++) {
		struct ckpt_slot *t = i < n ? &s[i] : self;

		if (t->state != SLOT_SUSPENDED)
			continue;
		if (w) {
			memcpy(t->rec.ctx, &t->ctx, sizeof(t->rec.ctx));
			if (codec->writer_record(w, IMAGE_REC_THREAD, &t->rec, sizeof(t->rec), NULL, 0) < 0)
				return -1;
		}
		(*count)++;
	}
	return 0;
}

static int write_stream(int fd, uint32_t flags)
{
	size_t nareas;
	uint32_t nthreads;
	struct image_header h;
	int i, nsig = ckpt_nsig < CKPT_SIGPOOL ? ckpt_nsig : CKPT_SIGPOOL;

	if (maps_scan() < 0)
		return -1;
	maps_areas(&nareas);
	write_threads(NULL, &nthreads);
	fill_header(&h, flags | (dirty_incremental() ? IMAGE_HDR_INCREMENTAL : 0), nthreads, (uint32_t)nareas);
	saved_proc.nsiginfo = 0;
	for (i = 0; i < nsig; i++)
		if (ckpt_sigpool[i].signo)
			saved_proc.nsiginfo++;
	codec->writer_begin(writer, fd);
	if (codec->writer_record(writer, IMAGE_REC_HEADER, &h, sizeof(h), NULL, 0) < 0 ||
	    codec->writer_record(writer, IMAGE_REC_PROCESS, &saved_proc, sizeof(saved_proc), NULL, 0) < 0 ||
	    maps_write_areas(writer) < 0 || write_threads(writer, &nthreads) < 0)
		return -1;
	for (i = 0; i < nsig; i++)
		if (ckpt_sigpool[i].signo &&
		    codec->writer_record(writer, IMAGE_REC_SIGINFO, &ckpt_sigpool[i], sizeof(ckpt_sigpool[i]),
					NULL, 0) < 0)
			return -1;
	if (maps_write_pages(writer) < 0)
		return -1;
	return codec->writer_finish(writer);
}

static int write_all(int fd, uint32_t flags)
{
	int ret = write_stream(fd, flags);

	maps_done();
	return ret;
}

/* The copy-on-write writer child's whole job (mtcp/cow.h). */
static int cow_write_all(int fd, uint32_t flags, uint64_t *bytes)
{
	int r = write_all(fd, flags);

	*bytes = codec->writer_bytes(writer);
	return r;
}

/* Saves this thread's resume point, then writes (cow: forks the writer,
 * or writes here if it cannot). Returns 1 in the restarted process, 0 when
 * written (or the writer runs), -1 after logging. Not inlined: the saved
 * context must stay valid while the image is written from deeper frames. */
static __attribute__((noinline)) int checkpoint_write(int fd, uint32_t flags, int cow)
{
	int r;

	if (sys_ctx_save(&threads_self()->ctx))
		return 1;
	if (cow) {
		r = cow_start(fd, flags, cow_write_all);
		if (r != -2)
			return r;
	}
	return write_all(fd, flags) < 0 ? -1 : 0;
}

static int open_target_file(const char *dir, struct coord_barrier_done *d)
{
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_perror("create checkpoint directory %s", dir);
		fail(d, "cannot create the checkpoint directory");
		return -1;
	}
	if (dirty_enabled()) {
		/* One file per generation: an incremental image needs the ones
		 * before it. Never replace an image (a restart from an older
		 * generation goes on with numbers a later chain used). */
		struct stat st;
		int k;

		for (k = 1; k < 1000; k++) {
			char nth[16] = "";

			if (k > 1)
				nolibc_snprintf(nth, sizeof(nth), "-%d", k);
			nolibc_snprintf(final_path, sizeof(final_path), "%s/ckpt_%s_%016llx.g%u%s%s", dir,
					program, (unsigned long long)upid, generation, nth, IMAGE_SUFFIX);
			if (sys_failed(sys_call4(__NR_newfstatat, AT_FDCWD, final_path, &st, 0)))
				break;
		}
	} else {
		nolibc_snprintf(final_path, sizeof(final_path), "%s/ckpt_%s_%016llx%s", dir, program,
				(unsigned long long)upid, IMAGE_SUFFIX);
	}
	nolibc_snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", final_path);
	fd = (int)sys_open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (sys_failed(fd)) {
		log_syserr(-fd, "create image %s", tmp_path);
		fail(d, "cannot create the image file");
		tmp_path[0] = '\0';
		return -1;
	}
	return fd;
}

static int open_target_stream(const char *dest, struct coord_barrier_done *d)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (parse_numeric(dest, &ss, &len) < 0) {
		log_err("migration destination %s is not a numeric IP:PORT", dest);
		fail(d, "bad migration destination");
		return -1;
	}
	fd = coord_connect(&ss, len, 10000);
	if (fd < 0) {
		log_err("cannot reach the migration destination %s: %s", dest, strerror(errno));
		fail(d, "migration destination unreachable");
		return -1;
	}
	nolibc_snprintf(final_path, sizeof(final_path), "%s", dest);
	return fd;
}

/* Waits for the destination's verdict on a streamed image. */
static int await_ack(int fd, struct coord_barrier_done *d)
{
	char ack[ACK_LEN];
	struct timeval tv = { 300, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	shutdown(fd, SHUT_WR);
	if (util_read_all(fd, ack, ACK_LEN) != ACK_LEN || memcmp(ack, ACK_OK, ACK_LEN)) {
		log_err("the migration destination did not confirm the image");
		fail(d, "migration destination did not confirm the image");
		return -1;
	}
	return 0;
}

static void restarted(void);

/* WRITE: returns 1 if this is now the restarted process. */
static int on_write(const struct coord_barrier *b, struct coord_barrier_done *d)
{
	int stream = (b->flags & COORD_BAR_MIGRATE) || lm_dest[0];
	const char *dest = (b->flags & COORD_BAR_MIGRATE) ? b->text : lm_dest;
	uint64_t t0 = util_now_ns(CLOCK_MONOTONIC);
	uint32_t flags = 0;
	int fd, r;

	generation = b->generation;
	nprocs = b->nprocs;
	tmp_path[0] = '\0';
	if (proc_save(&saved_proc) < 0) {
		fail(d, "cannot read the process state");
		return 0;
	}
	saved_proc.upid = upid;
	saved_proc.comp_id = comp_id;
	/* As the program sees them (the pid plugin's wrappers): virtual. */
	saved_proc.pid = (uint32_t)vpid_self();
	saved_proc.ppid = (uint32_t)getppid();
	saved_proc.pgid = (uint32_t)getpgid(0);
	saved_proc.sid = (uint32_t)getsid(0);
	saved_proc.restart_info = (uint64_t)(uintptr_t)&cryo_restart_info_g;
	if (plugin_run(PLUGIN_CKPT) < 0) {
		fail(d, "a plugin could not save its state");
		return 0;
	}
	if (stream) {
		fd = open_target_stream(dest, d);
		flags |= IMAGE_HDR_STREAM;
	} else {
		fd = open_target_file(ckpt_dir[0] ? ckpt_dir : b->text, d);
	}
	if (fd < 0)
		return 0;
	if (exit_after || (b->flags & COORD_BAR_EXIT_AFTER))
		flags |= IMAGE_HDR_EXIT_AFTER;
	{
		int cow = !stream && !(flags & IMAGE_HDR_EXIT_AFTER) && cow_wanted(b->flags);

		/* An incremental image names its parent by the parent's digest,
		 * which a copy-on-write writer (a child) does not hand back:
		 * a cow image is full, and the next one starts a new chain. */
		dirty_begin((b->flags & COORD_BAR_FULL) != 0 || cow, stream);
		r = checkpoint_write(fd, flags, cow);
	}
	if (r == 1) {
		cow_forget();	/* the image's writer state was the old process's */
		return 1;
	}
	if (r == 0 && stream)
		r = await_ack(fd, d);
	close(fd);
	if (r < 0) {
		if (!d->status)
			fail(d, stream ? "streaming the image failed" : "writing the image failed");
		if (tmp_path[0])
			unlink(tmp_path);
		tmp_path[0] = '\0';
		return 0;
	}
	d->ns = util_now_ns(CLOCK_MONOTONIC) - t0;
	nolibc_strlcpy(d->text, final_path, sizeof(d->text));
	if (cow_active()) {
		/* bytes and the writing time come at RELEASE */
		dirty_abort();
		d->flags |= COORD_DONE_COW;
		t_write_ns = t0;
		log_info("image %s: state captured in %llu ms, a child writes it",
			 final_path, (unsigned long long)(d->ns / 1000000));
		return 0;
	}
	d->bytes = codec->writer_bytes(writer);
	{
		uint8_t digest[32];

		if (codec->writer_digest(writer, digest) == 0)
			dirty_written(stream ? NULL : final_path, generation, upid, digest,
				      d->bytes - sizeof(struct image_rec_hdr) - sizeof(struct image_trailer) -
				      (key_path[0] ? IMAGE_SEAL_TAG_LEN : 0));
	}
	log_info("image %s: %llu bytes in %llu ms", final_path, (unsigned long long)d->bytes,
		 (unsigned long long)(d->ns / 1000000));
	return 0;
}

static void release(void)
{
	if (parked) {
		threads_resume();
		parked = 0;
	}
}

/* After a checkpoint: how long the program was stopped (make bench reads it). */
static void log_stall(void)
{
	uint64_t now = util_now_ns(CLOCK_REALTIME), us = now > t_suspend_ns ? (now - t_suspend_ns) / 1000 : 0;

	log_info("threads released: stall_ms=%llu.%03llu", (unsigned long long)(us / 1000),
		 (unsigned long long)(us % 1000));
}

/* RELEASE (copy-on-write checkpoints): every process has captured its state,
 * so the threads run again while the writer child finishes the image. A
 * process that exits after the checkpoint stays frozen until it does. */
static void on_release(const struct coord_barrier *b, struct coord_barrier_done *d)
{
	if (!(exit_after || (b->flags & COORD_BAR_EXIT_AFTER)) && parked) {
		plugin_run(PLUGIN_REFILL);
		plugin_run(PLUGIN_RESUME);
		release();
		released_early = 1;
		log_stall();
	}
	if (cow_active()) {
		if (cow_finish(&d->bytes) < 0) {
			fail(d, "writing the image failed");
			return;
		}
		d->ns = util_now_ns(CLOCK_MONOTONIC) - t_write_ns;
		log_info("image %s: %llu bytes in %llu ms (copy-on-write)", final_path,
			 (unsigned long long)d->bytes, (unsigned long long)(d->ns / 1000000));
	}
}

static void send_report(void)
{
	struct coord_report rep;
	uint64_t now = util_now_ns(CLOCK_REALTIME), t0 = cryo_restart_info_g.t_src_suspend_ns;

	memset(&rep, 0, sizeof(rep));
	rep.total_ns = now > t0 ? now - t0 : 0;
	rep.downtime_ns = rep.total_ns;
	rep.bytes = cryo_restart_info_g.stream_bytes;
	rep.pid = (uint32_t)getpid();
	log_info("migration: downtime %llu ms, %llu bytes", (unsigned long long)(rep.downtime_ns / 1000000),
		 (unsigned long long)rep.bytes);
	if (coord_fd >= 0)
		coord_send(coord_fd, COORD_REPORT, &rep, sizeof(rep));
}

static void on_barrier(const struct coord_barrier *b)
{
	struct coord_barrier_done d;

	memset(&d, 0, sizeof(d));
	d.phase = b->phase;
	d.generation = b->generation;
	d.attempt = b->attempt;
	switch (b->phase) {
	case COORD_PH_SUSPEND:
		if (prepare() < 0) {
			fail(&d, "cannot reserve memory for the checkpoint");
			break;
		}
		if (cow_prepare(b->flags) < 0) {
			fail(&d, "cannot reserve memory for the image writer");
			break;
		}
		released_early = 0;
		t_suspend_ns = util_now_ns(CLOCK_REALTIME);
		parked = 1;	/* even partly: RESUME must release whoever parked */
		if (threads_suspend() < 0)
			fail(&d, "cannot suspend the threads");
		break;
	case COORD_PH_WRITE:
		if (on_write(b, &d) == 1) {
			restarted();
			return;
		}
		break;
	case COORD_PH_RELEASE:
		on_release(b, &d);
		break;
	case COORD_PH_COMMIT:
		if (cow_active() && cow_finish(&d.bytes) < 0) {
			/* no RELEASE came: a coordinator that does not know cow */
			fail(&d, "writing the image failed");
			break;
		}
		if (tmp_path[0] && rename(tmp_path, final_path) < 0) {
			log_perror("rename %s to %s", tmp_path, final_path);
			fail(&d, "cannot rename the image");
			dirty_abort();
			break;
		}
		if (tmp_path[0])
			dirty_commit();
		else
			dirty_abort();
		tmp_path[0] = '\0';
		if (exit_after || (b->flags & COORD_BAR_EXIT_AFTER)) {
			d.flags |= COORD_DONE_EXITING;
			send_done(&d);
			log_info("image complete; exiting as asked");
			sys_exit_group(0);
		}
		break;
	case COORD_PH_RESUME:
		cow_idle();	/* after an abort: the writer is killed */
		if ((b->flags & COORD_BAR_ABORT) && tmp_path[0]) {
			unlink(tmp_path);
			tmp_path[0] = '\0';
		}
		if (b->flags & COORD_BAR_ABORT)
			dirty_abort();
		if (parked && !restart_pending) {
			plugin_run(PLUGIN_RESUME);
			if (!(b->flags & COORD_BAR_ABORT)) {
				release();
				log_stall();
			}
		}
		if (restart_pending) {
			plugin_run(PLUGIN_RESTART_RESUME);
			share_close();
		}
		restart_pending = 0;
		release();
		send_done(&d);
		if (migrated_report) {
			migrated_report = 0;
			send_report();
		}
		return;
	case COORD_PH_ELECT:
		if (plugin_run(PLUGIN_ELECT) < 0)
			fail(&d, "a plugin could not mark its shared objects");
		break;
	case COORD_PH_DRAIN:
		if (plugin_run(PLUGIN_DRAIN) < 0)
			fail(&d, "a plugin could not drain its data in flight");
		break;
	case COORD_PH_REFILL:
		/* A plugin that cannot put data back has logged it; the
		 * computation goes on either way. */
		/* The checkpoint is complete (every COMMIT is in): exec and
		 * exit() may go on; before, a process leaving would abort it. */
		cow_idle();
		if (!released_early)	/* cow: done at RELEASE */
			plugin_run(restart_pending ? PLUGIN_RESTART_REFILL : PLUGIN_REFILL);
		break;
	case COORD_PH_RESTART:
		plugin_run(PLUGIN_RESTART_SHARE);
		break;
	default:
		break;
	}
	send_done(&d);
}

static void on_pidmap(const struct coord_pidmap *m, uint32_t len)
{
	uint32_t i;

	if (len < sizeof(*m) || m->n > (len - sizeof(*m)) / sizeof(m->ents[0])) {
		log_warn("ignoring a malformed pid map");
		return;
	}
	for (i = 0; i < m->n; i++) {
		uint32_t v = m->ents[i].vpid;

		if (v & COORD_PID_GROUP)
			vpid_map_add_group((pid_t)(v & ~COORD_PID_GROUP), (pid_t)m->ents[i].real_pid);
		else
			vpid_map_add((pid_t)v, (pid_t)m->ents[i].real_pid);
	}
	log_debug("pid map: %u processes", m->n);
}

static void lost_coordinator(void)
{
	log_warn("lost the coordinator; this process runs on but cannot be checkpointed");
	if (coord_fd >= 0)
		close(coord_fd);
	coord_fd = -1;
	cow_idle();
	if (tmp_path[0])
		unlink(tmp_path);
	tmp_path[0] = '\0';
	release();
}

static void msg_lock_take(void)
{
	int c = 0;

	if (__atomic_compare_exchange_n(&msg_lock, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (c != 2)
		c = __atomic_exchange_n(&msg_lock, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		/* interrupted by the park signal: parked, then wait again */
		sys_futex(&msg_lock, FUTEX_WAIT_PRIVATE, 2, NULL);
		c = __atomic_exchange_n(&msg_lock, 2, __ATOMIC_ACQUIRE);
	}
}

static void msg_lock_drop(void)
{
	if (__atomic_exchange_n(&msg_lock, 0, __ATOMIC_RELEASE) == 2)
		sys_futex(&msg_lock, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* Waits until a whole message is in the socket, without taking it. 1, 0
 * at EOF, -1 with errno. */
static int peek_message(int fd)
{
	static char peek[sizeof(struct coord_hdr) + COORD_MSG_MAX];
	struct coord_hdr h;
	ssize_t r;

	r = recv(fd, &h, sizeof(h), MSG_PEEK | MSG_WAITALL);
	if (r <= 0)
		return (int)r;
	if ((size_t)r < sizeof(h) || h.len > COORD_MSG_MAX) {
		errno = EPROTO;
		return -1;
	}
	r = recv(fd, peek, sizeof(h) + h.len, MSG_PEEK | MSG_WAITALL);
	if (r <= 0)
		return (int)r;
	return (size_t)r == sizeof(h) + h.len ? 1 : (errno = EPROTO, -1);
}

/* A forked child's WELCOME (and the pid map after it) comes through the
 * loop like any message: a child that execs at once hands the rest over
 * to its next program. See join_computation_async. */
static void on_welcome(const struct coord_welcome *w, uint32_t len)
{
	if (len < sizeof(*w))
		return;
	if (w->status != COORD_OK) {
		log_err("the coordinator refused this process: %.*s", (int)sizeof(w->text), w->text);
		close(coord_fd);
		coord_fd = -1;
		return;
	}
	comp_id = w->comp_id;
	if (w->generation > generation)
		generation = w->generation;
}

static void *ckpt_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct coord_hdr hdr;
		int r;

		if (coord_fd < 0) {
			pause();
			continue;
		}
		/* Peeked first, taken and handled under the lock: a thread that
		 * execs holds the lock, and the new program finds the message. */
		r = peek_message(coord_fd);
		if (r < 0 && errno == EINTR)
			continue;
		msg_lock_take();
		if (r > 0)
			r = coord_recv(coord_fd, &hdr, msg.raw, sizeof(msg.raw), -1);
		if (r <= 0) {
			lost_coordinator();
			msg_lock_drop();
			continue;
		}
		switch (hdr.type) {
		case COORD_BARRIER:
			if (hdr.len >= sizeof(struct coord_barrier)) {
				msg.bar.text[sizeof(msg.bar.text) - 1] = '\0';
				on_barrier(&msg.bar);
			}
			break;
		case COORD_PIDMAP:
			on_pidmap((const struct coord_pidmap *)msg.raw, hdr.len);
			break;
		case COORD_WELCOME:
			on_welcome((const struct coord_welcome *)msg.raw, hdr.len);
			break;
		case COORD_KILL:
			log_info("killed by the coordinator");
			kill(getpid(), SIGKILL);
			break;
		default:
			log_debug("ignoring message type %u", hdr.type);
		}
		msg_lock_drop();
	}
	return NULL;
}

/* The restart path, on the checkpoint thread of the new process. */
static void restarted(void)
{
	struct cryo_restart_info *ri = &cryo_restart_info_g;
	char addr[300];
	int fd;

	threads_wait_restarted();
	vpid_note_kernel_pid();
	if (writer)
		codec->writer_restarted(writer);	/* writer != NULL: the codec is loaded */
	if (ri->blob_len)
		munmap((void *)(uintptr_t)ri->blob_start, ri->blob_len);
	if (ri->log_level >= 0)
		log_level_cur = ri->log_level;
	fd = ri->log_file[0] ? open(ri->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)
			     : fcntl(2, F_DUPFD_CLOEXEC, fd_base);
	log_setup(log_level_cur, fd >= 0 ? reserve_fd(fd) : 2);
	codec_sync_log();
	log_info("restarted from generation %u as pid %d (pid %d to the program)", generation,
		 vpid_kernel_pid(), vpid_self());
	dirty_forget(0);	/* its fds are not ours here: a new chain, from a full image */
	vpid_map_reset();	/* the coordinator sends the group's map before RESTART */
	proc_restore(&saved_proc);
	share_open();
	plugin_run(PLUGIN_RESTART);
	restart_pending = 1;
	/* The next checkpoint of a restarted process goes to a file as usual. */
	exit_after = 0;
	lm_dest[0] = '\0';
	tmp_path[0] = '\0';
	coord_fd = -1;
	parked = 1;
	migrated_report = (ri->flags & CRYO_RESTART_F_MIGRATED) != 0;
	nolibc_snprintf(addr, sizeof(addr), "%s:%d", ri->coord_host, ri->coord_port);
	if (parse_numeric(addr, &coord_addr, &coord_addrlen) < 0) {
		log_warn("bad coordinator address %s from cryo_restart", addr);
	} else {
		char port[16], lv[2] = { (char)('0' + (ri->log_level & 3)), '\0' };

		/* What the programs this one starts from now on must join. */
		nolibc_snprintf(port, sizeof(port), "%d", ri->coord_port);
		exec_env_set("CRYO_COORD_HOST", ri->coord_host);
		exec_env_set("CRYO_COORD_PORT", port);
		if (ri->log_level >= 0)
			exec_env_set("CRYO_LOG", lv);
		if (ri->log_file[0])
			exec_env_set("CRYO_LOG_FILE", ri->log_file);
		fd = coord_register(COORD_PROC_RESTARTED);
		if (fd == -2)
			sys_exit_group(1);
		coord_fd = fd;
	}
	if (coord_fd < 0) {
		/* Alone: this process is the whole group. */
		plugin_run(PLUGIN_RESTART_SHARE);
		plugin_run(PLUGIN_RESTART_REFILL);
		plugin_run(PLUGIN_RESTART_RESUME);
		share_close();
		restart_pending = 0;
		release();
		if (migrated_report)
			send_report();
	}
	/* RESTART, REFILL and RESUME come through the main loop. */
}

/* A process of its own: new unique id; the pid it is known by. */
static void new_identity(void)
{
	vpid_set_self_from_kernel();
	if (getrandom(&upid, sizeof(upid), 0) != sizeof(upid))
		upid = ((uint64_t)getpid() << 32) ^ util_now_ns(CLOCK_REALTIME);
}

/* Starts the checkpoint thread on coord_fd (with every signal blocked,
 * which it keeps). 0, or -1 after logging. */
static int start_ckpt_thread(void)
{
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	int ret = 0;

	sigfillset(&all);
	real_pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, ckpt_main, NULL) != 0) {
		log_err("cannot start the checkpoint thread");
		close(coord_fd);
		coord_fd = -1;
		ret = -1;
	}
	pthread_attr_destroy(&attr);
	real_pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/* Registers with the coordinator and starts the checkpoint thread. 0, or
 * -1 after logging: the process then runs on without checkpoints. */
static int join_computation(uint32_t flags)
{
	int fd = coord_register(flags);

	if (fd < 0)
		return -1;
	coord_fd = fd;
	return start_ckpt_thread();
}

/* The same for a forked child, without waiting for the answer: HELLO is
 * sent before fork() returns (the coordinator knows the child before it
 * runs any of the program), WELCOME is read by the checkpoint thread (or
 * the program the child execs, on the same connection). The
 * child has its computation id and pid map from its parent already; the
 * round trip to the coordinator was most of what a fork cost. */
static void join_computation_async(void)
{
	int fd = coord_hello(0);

	if (fd < 0)
		return;
	coord_fd = fd;
	start_ckpt_thread();
}

int ckpt_pid_conflicts(pid_t k)
{
	return vpid_conflicts(k) || threads_real_tid(k) != k;
}

/* A child process of this one, not yet in the computation (its memory is
 * a copy, the parent's checkpoint thread was not copied and the
 * coordinator socket is the parent's): becomes a process of its own and
 * joins if the parent had. */
static int fork_ready_fd = -1;	/* set by ckpt_fork_begin, seen by the child */

static void child_setup(void)
{
	int was_joined = coord_fd >= 0, ready = fork_ready_fd;

	fork_ready_fd = -1;
	msg_lock = 0;	/* the parent's checkpoint thread may have held it */
	if (coord_fd >= 0)
		close(coord_fd);
	coord_fd = -1;
	parked = 0;
	tmp_path[0] = '\0';
	dirty_forget(1);	/* the userfaultfd and pagemap fds are the parent's */
	new_identity();
	if (was_joined && ready >= 0) {
		/* The parent waits for this: registered before it can park. */
		if (join_computation(0) < 0)
			log_debug("the child runs on outside the computation");
		while (write(ready, "j", 1) < 0 && errno == EINTR)
			;
		close(ready);
	} else if (was_joined) {
		join_computation_async();
	}
}

int ckpt_fork_begin(void)
{
	int p[2];

	if (coord_fd < 0 || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fork_ready_fd = p[1];
	return p[0];
}

void ckpt_fork_wait(int fd)
{
	char c;

	if (fork_ready_fd >= 0)
		close(fork_ready_fd);
	fork_ready_fd = -1;
	if (fd < 0)
		return;
	/* One byte once the child is registered; end of file if it died or
	 * exec'd first (close-on-exec). */
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	close(fd);
}

/* In a forked child (not after vfork or posix_spawn, whose child execs and
 * joins from the constructor), before fork() returns in it. A child whose
 * kernel pid the computation still uses as a virtual one leaves at once:
 * the fork wrapper (wrap_fork.c) reaps it and forks again. */
static void after_fork_child(void)
{
	if (ckpt_pid_conflicts(vpid_kernel_pid()))
		sys_exit_group(0);
	child_setup();
}

void ckpt_child_start(void)
{
	child_setup();
}

int ckpt_is_owner(void)
{
	return vpid_kernel_pid() == vpid_owner();
}

/* The map, for the next program: a memfd that survives exec. Its fd, or -1. */
static int map_to_memfd(void)
{
	size_t i, n = vpid_map_count();
	int32_t e[3 * 128];
	long fd;

	if (!n)
		return -1;
	fd = sys_memfd_create("cryo-pidmap", 0);
	if (sys_failed(fd)) {
		log_syserr((int)-fd, "pass the pid map across exec");
		return -1;
	}
	for (i = 0; i < n;) {
		size_t k = 0;

		for (; i < n && k < 128; i++, k++) {
			pid_t v, r;
			int g;

			vpid_map_get(i, &v, &r, &g);
			e[3 * k] = v;
			e[3 * k + 1] = r;
			e[3 * k + 2] = g;
		}
		if (util_write_all((int)fd, e, k * 3 * sizeof(e[0])) < 0) {
			log_perror("pass the pid map across exec");
			sys_close((int)fd);
			return -1;
		}
	}
	return (int)fd;
}

static int exec_map_fd = -1;

void ckpt_exec_begin(char *ident, size_t n)
{
	ident[0] = '\0';
	cow_wait_idle();	/* an exec would lose the image being written */
	msg_lock_take();
	if (coord_fd < 0)
		return;
	/* The connection stays this process's across the exec. */
	if (fcntl(coord_fd, F_SETFD, 0) < 0)
		return;
	exec_map_fd = map_to_memfd();
	nolibc_snprintf(ident, n, "%s=%d,%d,%llx,%llx,%d,%u,%d", EXEC_ENV_IDENT, (int)vpid_owner(),
			coord_fd, (unsigned long long)upid, (unsigned long long)comp_id, (int)vpid_self(),
			generation, exec_map_fd);
}

void ckpt_exec_end(void)
{
	int saved = errno;

	if (coord_fd >= 0)
		fcntl(coord_fd, F_SETFD, FD_CLOEXEC);
	if (exec_map_fd >= 0)
		close(exec_map_fd);
	exec_map_fd = -1;
	msg_lock_drop();
	errno = saved;
}

/* What an exec'd program inherits from the process it was (CRYO_EXEC). */
struct exec_ident {
	int valid;
	int fd, map_fd;
	pid_t vpid;
};

/* Reads CRYO_EXEC. Only this very process's (the kernel pid it names is
 * ours), else it is ignored. */
static void exec_ident_parse(struct exec_ident *x)
{
	const char *e = getenv(EXEC_ENV_IDENT);
	unsigned long long u, c;
	int kpid, fd, vpid, mfd;
	unsigned gen;

	memset(x, 0, sizeof(*x));
	if (!e || sscanf(e, "%d,%d,%llx,%llx,%d,%u,%d", &kpid, &fd, &u, &c, &vpid, &gen, &mfd) != 7 ||
	    kpid != vpid_kernel_pid() || !u || vpid <= 0)
		return;
	x->valid = 1;
	x->fd = fd;
	x->map_fd = mfd;
	x->vpid = vpid;
	upid = u;
	comp_id = c;
	generation = gen;
	vpid_set_self(vpid);
}

/* The pid map the process had before exec. */
static void exec_ident_load_map(struct exec_ident *x)
{
	int32_t e[3 * 128];
	off_t off = 0;
	ssize_t r;

	if (x->map_fd < 0)
		return;
	/* written before the exec: read from the start */
	while ((r = pread(x->map_fd, e, sizeof(e), off)) > 0) {
		off += r;
		for (ssize_t k = 0; k + 1 <= r / (ssize_t)(3 * sizeof(e[0])); k++) {
			if (e[3 * k + 2])
				vpid_map_add_group(e[3 * k], e[3 * k + 1]);
			else
				vpid_map_add(e[3 * k], e[3 * k + 1]);
		}
	}
	close(x->map_fd);
}

/* The connection the process had before exec, if it is still one. */
static int exec_ident_take_fd(const struct exec_ident *x)
{
	struct stat st;

	if (x->fd < 0 || fstat(x->fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return -1;
	fcntl(x->fd, F_SETFD, FD_CLOEXEC);
	return reserve_fd(x->fd);
}

static void read_config(void)
{
	const char *e;
	char host[256];
	int port;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > CKPT_FD_RESERVE * 2 &&
	    rl.rlim_cur != RLIM_INFINITY)
		fd_base = (int)rl.rlim_cur - CKPT_FD_RESERVE;
	coord_default_addr(host, sizeof(host), &port);
	if (coord_resolve(host, port, &coord_addr, &coord_addrlen) < 0)
		coord_addrlen = 0;
	e = getenv("CRYO_CKPT_DIR");
	if (e && *e)
		nolibc_strlcpy(ckpt_dir, e, sizeof(ckpt_dir));
	e = getenv("CRYO_EXIT_AFTER_CKPT");
	exit_after = e && *e == '1';
	e = getenv("LM_DEST_PORT");
	if (e && *e) {
		const char *ip = getenv("LM_DEST_IP");
		uint64_t lp;

		/* Resolved now: the checkpoint path has no resolver. */
		if (util_parse_u64(e, &lp) < 0 || !lp || lp > 65535 ||
		    coord_numeric_addr(ip && *ip ? ip : "127.0.0.1", (int)lp, lm_dest, sizeof(lm_dest)) < 0) {
			log_warn("LM_DEST_IP/LM_DEST_PORT (%s:%s) is not a usable address; checkpoints go to files",
				 ip ? ip : "", e);
			lm_dest[0] = '\0';
		}
	}
	cow_config();
	e = getenv("CRYO_COMPRESS");
	if (e && *e)
		compress_level = atoi(e);
	e = getenv(KEY_ENV);
	if (e && *e) {
		/* Read at the first checkpoint (prepare_key), with the codec: a
		 * bad file fails that checkpoint, never a plain image. */
		nolibc_strlcpy(key_path, e, sizeof(key_path));
		ckpt_key = ckpt_scratch(sizeof(*ckpt_key));
	}
	dirty_config();
	nolibc_strlcpy(program, program_invocation_short_name, sizeof(program));
	for (char *p = program; *p; p++)
		if (*p == '/' || *p == ' ')
			*p = '_';
}

__attribute__((constructor)) static void cryo_init(void)
{
	const char *e = getenv("CRYO_DISABLE");
	struct exec_ident x;

	if (e && *e == '1')
		return;
	log_init();
	log_set_ident("libcryo");
	read_config();
	if (log_fd() != 2)
		log_setup(log_level_cur, reserve_fd(log_fd()));
	exec_ident_parse(&x);
	if (!x.valid)
		new_identity();
	if (threads_init() < 0 || plugin_run(PLUGIN_INIT) < 0) {
		exec_env_init();
		return;
	}
	{
		/* An exec'ing thread blocks the park signal (wrap_exec.c): the
		 * handler is in now, so it may come (a pending one is a stray). */
		sigset_t park;

		sigemptyset(&park);
		sigaddset(&park, ckpt_signal);
		real_pthread_sigmask(SIG_UNBLOCK, &park, NULL);
	}
	if (x.valid)
		exec_ident_load_map(&x);
	exec_env_init();
	pthread_atfork(NULL, NULL, after_fork_child);
	if (!coord_addrlen)
		return;
	if (x.valid && (coord_fd = exec_ident_take_fd(&x)) >= 0)
		/* The same process after exec, on the same connection: the
		 * coordinator sees no change, and a message it sent meanwhile
		 * is still in the socket. */
		start_ckpt_thread();
	else
		join_computation(x.valid ? COORD_PROC_EXEC : 0);
}
