/* cryo_restart: bring a checkpointed process back.
 *
 *   cryo_restart [--coord HOST[:PORT]] [--keep-stdio] [--strict-files] IMAGE...
 *   LM_DEST_PORT=P [LM_DEST_IP=A] cryo_restart   (wait for a migrating process)
 *
 * Reads and verifies the image (restart/loader.c), finds or starts the
 * coordinator the restarted process will join, and hands over to the
 * restorer: on success this process becomes the checkpointed one. */
#define LOG_PREFIX ""
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include "coordinator/protocol.h"
#include "mtcp/key.h"
#include "mtcp/log.h"
#include "mtcp/restart_info.h"
#include "mtcp/util.h"
#include "restart/loader.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: cryo_restart [--coord HOST[:PORT]] [--keep-stdio] [--strict-files] IMAGE...\n"
		   "       LM_DEST_PORT=PORT [LM_DEST_IP=ADDR] cryo_restart [options]\n"
		   "Restarts the checkpointed processes of the IMAGEs (one computation: each\n"
		   "process comes back as the child of its parent), or waits on PORT for a\n"
		   "process migrating with cryo_command --migrate or LM_DEST_PORT on the source.\n"
		   "  --coord HOST[:PORT]  coordinator the process joins (started if none answers here)\n"
		   "  --ready-file FILE    when listening, create FILE once the port is open\n"
		   "  --timeout SECS       when listening, give up after SECS without a source\n"
		   "  --key-file KEY       key of encrypted images (default: $CRYO_KEY_FILE)\n"
		   "  --keep-stdio         reopen the original stdin/stdout/stderr files and terminals\n"
		   "                       instead of taking this command's (CRYO_KEEP_STDIO=1)\n"
		   "  --strict-files       refuse to restart if a file the program had open vanished\n"
		   "                       (CRYO_STRICT_FILES=1; default: a warning, the fd left closed)\n"
		   "  --help, --version\n");
}

/* A yes/no environment variable: set, and not "" or "0". */
static int env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

/* Listens for one migration stream; returns the connected socket or -1. */
static int accept_stream(const char *ip, const char *port_s, const char *ready, int timeout_s)
{
	struct addrinfo hints, *res = NULL;
	struct pollfd pfd;
	int ls, fd = -1, one = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(ip && *ip ? ip : NULL, port_s, &hints, &res);
	if (r) {
		log_err("bad listening address %s:%s: %s", ip ? ip : "*", port_s, gai_strerror(r));
		return -1;
	}
	ls = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0) {
		log_perror("socket");
		freeaddrinfo(res);
		return -1;
	}
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, res->ai_addr, res->ai_addrlen) < 0 || listen(ls, 1) < 0) {
		log_perror("listen on port %s", port_s);
		goto out;
	}
	log_info("waiting for a migrating process on port %s", port_s);
	if (ready) {
		int rf = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (rf < 0) {
			log_perror("create %s", ready);
			goto out;
		}
		close(rf);
	}
	pfd.fd = ls;
	pfd.events = POLLIN;
	do
		r = poll(&pfd, 1, timeout_s > 0 ? timeout_s * 1000 : -1);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		log_err("no migrating process arrived on port %s within %d s", port_s, timeout_s);
		goto out;
	}
	fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		log_perror("accept on port %s", port_s);
out:
	close(ls);
	freeaddrinfo(res);
	return fd;
}

/* Refuses, before anything is restored, to restart a process whose
 * original still runs in the computation (the coordinator would refuse it
 * anyway, but only once its memory was back). 0 if it may go on. */
static int check_not_running(const char *host, int port, const struct loaded_image *img)
{
	struct coord_command cmd;
	char want[24], *text = NULL, *line;
	int fd, status = COORD_ERR, ret = 0;

	fd = coord_open_cmd(host, port, 3000);
	if (fd < 0)
		return 0;
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = COORD_OP_LIST;
	if (coord_send(fd, COORD_COMMAND, &cmd, sizeof(cmd)) < 0 ||
	    coord_read_reply(fd, 10000, &status, &text) < 0 || status != COORD_OK)
		goto out;	/* cannot tell: the coordinator decides at registration */
	snprintf(want, sizeof(want), "%016llx ", (unsigned long long)img->proc.upid);
	for (line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (!strncmp(line, want, strlen(want))) {
			log_err("%s: process %u (%s) is still running in the computation at %s:%d; restart "
				"refused while the original runs", img->name, img->proc.pid, img->hdr.program, host,
				port);
			ret = -1;
			break;
		}
	}
out:
	free(text);
	close(fd);
	return ret;
}

static int coordinator_address(const char *spec, struct loader_opts *o, char *host, size_t hostsz)
{
	char dir[4096];
	struct sockaddr_storage ss;
	socklen_t len;
	int port;

	coord_default_addr(host, hostsz, &port);
	if (spec && coord_parse_addr(spec, host, hostsz, &port) < 0) {
		log_err("bad coordinator address %s (expected HOST[:PORT])", spec);
		return -1;
	}
	if (util_self_dir(dir, sizeof(dir)) < 0 || coord_ensure(host, port, dir) < 0)
		return -1;
	if (coord_resolve(host, port, &ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, o->coord_host, sizeof(o->coord_host));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, o->coord_host, sizeof(o->coord_host));
	o->coord_port = port;
	return 0;
}

/* Becomes the process of one image; returns only on failure (logged). */
static int restore_one(const char *path, struct loader_opts *o, const char *host)
{
	struct loaded_image img;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_perror("open image %s", path);
		return -1;
	}
	if (loader_read(fd, path, &img) == 0) {
		if (check_not_running(host, o->coord_port, &img) == 0)
			loader_exec(&img, o);	/* returns only on failure */
		loader_free(&img);
	}
	close(fd);
	return -1;
}

struct tree_node {
	const char *path;
	struct image_header hdr;
	struct image_process proc;
	int parent;		/* index, -1 for a root */
	int group;		/* index of the node that makes this node's process
				 * group (itself for a leader or a founder),
				 * TREE_OUTER: the group cryo_restart runs in */
	int new_session;	/* calls setsid(): the session's leader */
};

#define TREE_OUTER (-1)

/* Shared by the restore processes: each node's kernel pid once its group
 * exists, for the members of that group to join it. */
struct tree_shared {
	volatile pid_t real;
	volatile int group_ready;
};

static struct tree_shared *tree_sh;
static pid_t outer_pgrp;

static int node_of_pid(const struct tree_node *t, int n, uint32_t pid)
{
	for (int k = 0; k < n; k++)
		if (t[k].proc.pid == pid)
			return k;
	return -1;
}

/* Who makes each process group and session. A group whose leader is among
 * the images is made by it; one whose leader is gone (a pipeline whose
 * first process exited) by its first member, which leads it now (the pid
 * map keeps its old id); a group from outside the computation (the shell's
 * that ran cryo_launch: the group of a root that was not an orphan, which
 * no image leads) is the one cryo_restart runs in. A session is made by its leader (setsid); its
 * members are in it by being forked by it. */
static void plan_groups(struct tree_node *t, int n)
{
	int i, k;

	for (i = 0; i < n; i++) {
		const struct image_process *p = &t[i].proc;
		int outer = 0;

		t[i].group = node_of_pid(t, n, p->pgid);
		if (t[i].group < 0) {
			/* a root started from outside is in it; orphans that
			 * init adopted (ppid 1) do not tell */
			for (k = 0; k < n; k++)
				if (t[k].parent < 0 && t[k].proc.ppid != 1 && t[k].proc.pgid == p->pgid)
					outer = 1;
			if (outer) {
				t[i].group = TREE_OUTER;
			} else {
				for (k = 0; k < n && t[k].proc.pgid != p->pgid; k++)
					;
				t[i].group = k;	/* the founder: first member */
			}
		}
		/* A session whose leader is gone stays the one the process is
		 * forked in: the pid map still shows the program its id. */
		t[i].new_session = p->sid == p->pid;
	}
}

/* Joins the node's process group once it exists. */
static void join_group(struct tree_node *t, int i)
{
	int g = t[i].group, waited;
	pid_t want;

	if (g == i)
		return;
	if (g == TREE_OUTER) {
		want = outer_pgrp;
	} else {
		for (waited = 0; !tree_sh[g].group_ready && waited < 10000; waited++)
			usleep(1000);
		if (!tree_sh[g].group_ready) {
			log_warn("%s: the process group %u was not made in 10 s", t[i].path, t[i].proc.pgid);
			return;
		}
		want = tree_sh[g].real;
	}
	if (getpgrp() != want && setpgid(0, want) < 0)
		log_pwarn("%s: join the process group %u of pid %u", t[i].path, t[i].proc.pgid,
			  t[i].proc.pid);
}

/* In a fresh process for node i: its session or group first (children
 * inherit them), then its children, each forked from it so that it is
 * their parent again, then the group it is a member of (its leader may be
 * anywhere in the tree: every node is forked before any waits), then its
 * own image. Never returns. */
static __attribute__((noreturn)) void restore_node(struct tree_node *t, int n, int i, struct loader_opts *o,
						   const char *host)
{
	const struct image_process *p = &t[i].proc;
	int k;

	if (t[i].new_session) {
		if (setsid() < 0)
			log_pwarn("%s: restore the session of pid %u", t[i].path, p->pid);
	} else if (t[i].group == i) {
		if (setpgid(0, 0) < 0)
			log_pwarn("%s: restore the process group of pid %u", t[i].path, p->pid);
	}
	tree_sh[i].real = getpid();
	__atomic_store_n(&tree_sh[i].group_ready, 1, __ATOMIC_RELEASE);
	for (k = 0; k < n; k++) {
		pid_t c;

		if (t[k].parent != i)
			continue;
		c = fork();
		if (c < 0) {
			log_perror("fork for %s", t[k].path);
			exit(1);
		}
		if (c == 0)
			restore_node(t, n, k, o, host);
	}
	if (!t[i].new_session)
		join_group(t, i);
	restore_one(t[i].path, o, host);
	exit(1);
}

/* Restarts the processes of several images as the tree they formed: each
 * image's process is forked by its parent's, the roots by this one. */
static int restart_tree(char **paths, int n, struct loader_opts *o, const char *host)
{
	struct tree_node *t = calloc((size_t)n, sizeof(*t));
	int i, k, first_root = -1;

	if (!t) {
		log_err("out of memory");
		return 1;
	}
	for (i = 0; i < n; i++) {
		t[i].path = paths[i];
		if (loader_peek(paths[i], &t[i].hdr, &t[i].proc) < 0)
			return 1;
		for (k = 0; k < i; k++)
			if (t[k].proc.upid == t[i].proc.upid) {
				log_err("%s and %s are images of the same process", t[k].path, t[i].path);
				return 1;
			}
	}
	for (i = 0; i < n; i++) {
		t[i].parent = -1;
		for (k = 0; k < n; k++)
			if (k != i && t[k].proc.pid == t[i].proc.ppid)
				t[i].parent = k;
	}
	plan_groups(t, n);
	outer_pgrp = getpgrp();
	tree_sh = mmap(NULL, (size_t)n * sizeof(*tree_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (tree_sh == MAP_FAILED) {
		log_perror("map %d bytes shared by the restore processes", (int)(n * sizeof(*tree_sh)));
		return 1;
	}
	/* This process becomes the root the user started (the program
	 * cryo_launch ran): not an orphan that init (pid 1) adopted. */
	for (i = 0; i < n && first_root < 0; i++)
		if (t[i].parent < 0 && t[i].proc.ppid != 1)
			first_root = i;
	for (i = 0; i < n; i++) {
		pid_t c;

		if (t[i].parent >= 0 || i == first_root)
			continue;
		if (first_root < 0) {
			first_root = i;
			continue;
		}
		/* A second root (its parent was outside the computation): a child
		 * of this process. */
		c = fork();
		if (c < 0) {
			log_perror("fork for %s", t[i].path);
			return 1;
		}
		if (c == 0)
			restore_node(t, n, i, o, host);
	}
	if (first_root < 0) {
		log_err("the images form a cycle of parents: no process to start from");
		return 1;
	}
	restore_node(t, n, first_root, o, host);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "coord", required_argument, NULL, 'c' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "keep-stdio", no_argument, NULL, 's' },
		{ "strict-files", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *coord = NULL, *ready = NULL, *lm_port = getenv("LM_DEST_PORT"), *name;
	const char *key_file = getenv(KEY_ENV);
	static uint8_t key[KEY_LEN];	/* gone with this address space at the restore */
	char host[256];
	struct loader_opts o;
	struct loaded_image img;
	uint64_t secs;
	int c, fd, timeout_s = 0;

	log_set_ident("cryo_restart");
	log_init();
	memset(&o, 0, sizeof(o));
	o.t_restart_ns = util_now_ns(CLOCK_REALTIME);
	o.ack_fd = -1;
	o.log_level = getenv("CRYO_LOG") ? log_level_cur : -1;
	o.log_file = getenv("CRYO_LOG_FILE");
	if (env_flag("CRYO_KEEP_STDIO"))
		o.info_flags |= CRYO_RESTART_F_KEEP_STDIO;
	if (env_flag("CRYO_STRICT_FILES"))
		o.info_flags |= CRYO_RESTART_F_STRICT_FILES;
	opterr = 0;	/* one line of our own instead of getopt's */
	while ((c = getopt_long(argc, argv, "+c:r:t:k:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key_file = optarg;
			break;
		case 's':
			o.info_flags |= CRYO_RESTART_F_KEEP_STDIO;
			break;
		case 'S':
			o.info_flags |= CRYO_RESTART_F_STRICT_FILES;
			break;
		case 'c':
			coord = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 't':
			if (util_parse_u64(optarg, &secs) < 0 || secs > 86400 * 365) {
				log_err("bad --timeout %s (seconds expected)", optarg);
				return 2;
			}
			timeout_s = (int)secs;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("cryo_restart %s\n", CRYO_VERSION);
			return 0;
		default:
			if (optopt && optopt != '?')
				util_die(2, "option -%c needs a value (try --help)", optopt);
			util_die(2, "unknown option '%s' (try --help)", argv[optind - 1]);
		}
	}
	if (optind == argc && !(lm_port && *lm_port)) {
		util_die(2, "no image given, and LM_DEST_PORT is not set to wait for a migration (try --help)");
	}
	if (key_file && *key_file) {
		if (key_load(key_file, key) < 0)
			return 1;
		loader_set_key(key);
	}
	if (optind < argc) {
		if (coordinator_address(coord, &o, host, sizeof(host)) < 0)
			return 1;
		return restart_tree(argv + optind, argc - optind, &o, host);
	} else {
		name = "migration stream";
		fd = accept_stream(getenv("LM_DEST_IP"), lm_port, ready, timeout_s);
		if (fd < 0)
			return 1;
		o.migrated = 1;
		o.ack_fd = fd;
	}
	if (loader_read(fd, name, &img) < 0)
		goto fail;
	/* A migrating source runs until this side confirms the image: only a
	 * restart from a file can collide with its original. */
	if (coordinator_address(coord, &o, host, sizeof(host)) < 0)
		goto fail;
	loader_exec(&img, &o);	/* returns only on failure */
	loader_free(&img);
fail:
	if (o.migrated)
		(void)!write(fd, "CRYO-NO\n", 8);
	close(fd);
	return 1;
}
