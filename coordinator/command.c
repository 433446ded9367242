/* cryo_command: the command-line client of the coordinator. It connects
 * (HELLO_CMD, WELCOME), sends one COMMAND, prints the REPLY text on stdout
 * (or the error on stderr) and exits with a code scripts can test:
 *   0 ok, 1 the coordinator reported an error, 2 usage error,
 *   3 no coordinator at the address.
 * Messages for the user are single "cryo_command: ..." lines on stderr,
 * not log lines. doc/protocol.md lists the replies. */
#define LOG_PREFIX ""
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "coordinator/protocol.h"
#include "mtcp/log.h"
#include "mtcp/util.h"

#define EXIT_ERR	1
#define EXIT_USAGE	2
#define EXIT_NOCOORD	3
#define CMD_TIMEOUT_MS	10000	/* replies that do not wait for a checkpoint */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cryo_command [--coord HOST[:PORT]] [--json] COMMAND\n"
		"Commands:\n"
		"  -s, --status         state of the coordinator and the computation\n"
		"  -l, --list           the processes, one per line\n"
		"  -c, --checkpoint     start a checkpoint and return\n"
		"  -bc, --bcheckpoint   checkpoint and wait: prints the image paths\n"
		"                       [--full: full images, restarting incremental chains]\n"
		"       [--cow]         copy-on-write: the program runs again while its\n"
		"                       image is written (doc/cow.md)\n"
		"  -i, --interval SECS  checkpoint every SECS seconds (0 = off)\n"
		"  -k, --kill           kill the computation, keep the coordinator\n"
		"  -q, --quit           kill the computation and stop the coordinator\n"
		"  --migrate HOST:PORT  move the (one-process) computation to a cryo_restart\n"
		"                       listening there [--precopy | --postcopy]\n"
		"  -h, --help, --version\n"
		"The address is --coord, else CRYO_COORD_HOST/CRYO_COORD_PORT, else %s:%d.\n"
		"Exit status: 0 ok, 1 the coordinator reported an error, 2 usage error,\n"
		"3 no coordinator at the address.\n",
		COORD_DEFAULT_HOST, COORD_DEFAULT_PORT);
}

struct opts {
	char host[256];
	int port;
	struct coord_command cmd;
	int have_op;
};

static void set_op(struct opts *o, uint32_t op, uint32_t flags, const char *name)
{
	if (o->have_op)
		util_die(EXIT_USAGE, "give one command only (%s is the second)", name);
	o->have_op = 1;
	o->cmd.op = op;
	o->cmd.flags |= flags;
}

/* The value of option argv[*i]: after '=' or the next argument. */
static const char *value(int argc, char **argv, int *i, const char *eq)
{
	if (eq)
		return eq + 1;
	if (*i + 1 >= argc)
		util_die(EXIT_USAGE, "option %s needs a value", argv[*i]);
	return argv[++*i];
}

static void parse(int argc, char **argv, struct opts *o)
{
	const char *coord = NULL;
	uint32_t mode = 0;
	int full = 0;
	int cow = 0;

	coord_default_addr(o->host, sizeof(o->host), &o->port);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strncmp(a, "--", 2) ? NULL : strchr(a, '=');
		char name[64];
		uint64_t secs;

		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
		if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(name, "--version")) {
			printf("cryo_command %s\n", CRYO_VERSION);
			exit(0);
		} else if (!strcmp(name, "--coord")) {
			coord = value(argc, argv, &i, eq);
		} else if (!strcmp(name, "--json") || !strcmp(name, "-j")) {
			o->cmd.flags |= COORD_CMD_JSON;
		} else if (!strcmp(name, "--status") || !strcmp(name, "-s")) {
			set_op(o, COORD_OP_STATUS, 0, a);
		} else if (!strcmp(name, "--list") || !strcmp(name, "-l")) {
			set_op(o, COORD_OP_LIST, 0, a);
		} else if (!strcmp(name, "--checkpoint") || !strcmp(name, "-c")) {
			set_op(o, COORD_OP_CHECKPOINT, 0, a);
		} else if (!strcmp(name, "--bcheckpoint") || !strcmp(name, "-bc")) {
			set_op(o, COORD_OP_CHECKPOINT, COORD_CMD_BLOCKING, a);
		} else if (!strcmp(name, "--kill") || !strcmp(name, "-k")) {
			set_op(o, COORD_OP_KILL, 0, a);
		} else if (!strcmp(name, "--quit") || !strcmp(name, "-q")) {
			set_op(o, COORD_OP_QUIT, 0, a);
		} else if (!strcmp(name, "--interval") || !strcmp(name, "-i")) {
			const char *v = value(argc, argv, &i, eq);

			if (util_parse_u64(v, &secs) < 0 || secs > 315360000)
				util_die(EXIT_USAGE,
				     "bad interval '%s': expected a number of seconds", v);
			set_op(o, COORD_OP_INTERVAL, 0, a);
			o->cmd.arg = (int64_t)secs;
		} else if (!strcmp(name, "--migrate")) {
			const char *v = value(argc, argv, &i, eq);
			char h[256] = "";
			int p = 0;

			if (coord_parse_addr(v, h, sizeof(h), &p) < 0 || !h[0] || !p)
				util_die(EXIT_USAGE,
				     "bad migration target '%s': expected HOST:PORT", v);
			if (strlen(v) >= sizeof(o->cmd.text))
				util_die(EXIT_USAGE, "migration target too long: %s", v);
			set_op(o, COORD_OP_MIGRATE, 0, a);
			/* The process connects with no resolver: hand it numbers. */
			if (coord_numeric_addr(h, p, o->cmd.text, sizeof(o->cmd.text)) < 0)
				util_die(EXIT_USAGE, "cannot resolve migration target '%s'", v);
		} else if (!strcmp(name, "--full")) {
			full = 1;
		} else if (!strcmp(name, "--cow")) {
			cow = 1;
		} else if (!strcmp(name, "--precopy")) {
			mode |= COORD_CMD_PRECOPY;
		} else if (!strcmp(name, "--postcopy")) {
			mode |= COORD_CMD_POSTCOPY;
		} else if (a[0] == '-') {
			util_die(EXIT_USAGE, "unknown option '%s' (try --help)", a);
		} else {
			util_die(EXIT_USAGE, "unexpected argument '%s' (try --help)", a);
		}
	}
	if (!o->have_op)
		util_die(EXIT_USAGE, "no command given (try --help)");
	if (mode == (COORD_CMD_PRECOPY | COORD_CMD_POSTCOPY))
		util_die(EXIT_USAGE, "--precopy and --postcopy exclude each other");
	if (mode && o->cmd.op != COORD_OP_MIGRATE)
		util_die(EXIT_USAGE, "--precopy and --postcopy go with --migrate");
	o->cmd.flags |= mode;
	if (full && o->cmd.op != COORD_OP_CHECKPOINT)
		util_die(EXIT_USAGE, "--full goes with --checkpoint or --bcheckpoint");
	if (full)
		o->cmd.flags |= COORD_CMD_FULL;
	if (cow && o->cmd.op != COORD_OP_CHECKPOINT)
		util_die(EXIT_USAGE, "--cow goes with --checkpoint or --bcheckpoint");
	if (cow)
		o->cmd.flags |= COORD_CMD_COW;
	if (coord && coord_parse_addr(coord, o->host, sizeof(o->host), &o->port) < 0)
		util_die(EXIT_USAGE, "bad coordinator address '%s': expected HOST[:PORT]", coord);
}

/* Reads a reply, possibly split over several REPLY messages, and prints
 * it. Returns the exit code. */
static int read_reply(int fd, const char *addr, int timeout_ms)
{
	int status = COORD_OK, code;
	size_t total;
	char *text;

	if (coord_read_reply(fd, timeout_ms, &status, &text) < 0) {
		if (errno == ECONNRESET)
			util_die(EXIT_ERR, "the coordinator at %s closed the connection", addr);
		if (errno == ETIMEDOUT)
			util_die(EXIT_ERR, "no reply from the coordinator at %s", addr);
		if (errno == EPROTO)
			util_die(EXIT_ERR, "malformed reply from the coordinator at %s", addr);
		util_die(EXIT_ERR, "reading the reply from %s: %s", addr, strerror(errno));
	}
	total = strlen(text);
	if (status == COORD_OK) {
		fputs(text, stdout);
		if (total && text[total - 1] != '\n')
			putchar('\n');
		code = fflush(stdout) == 0 ? 0 : EXIT_ERR;
	} else {
		while (total && text[total - 1] == '\n')
			text[--total] = '\0';
		fprintf(stderr, "cryo_command: %s\n", total ? text : "the coordinator failed");
		code = EXIT_ERR;
	}
	free(text);
	return code;
}

int main(int argc, char **argv)
{
	struct opts o;
	char addr[300];
	int fd, blocking;

	memset(&o, 0, sizeof(o));
	log_set_ident("cryo_command");
	log_init();
	parse(argc, argv, &o);
	if (strchr(o.host, ':'))
		snprintf(addr, sizeof(addr), "[%s]:%d", o.host, o.port);
	else
		snprintf(addr, sizeof(addr), "%s:%d", o.host, o.port);

	fd = coord_open_cmd(o.host, o.port, 3000);
	if (fd < 0)
		util_die(EXIT_NOCOORD, "no coordinator at %s", addr);
	if (coord_send(fd, COORD_COMMAND, &o.cmd, sizeof(o.cmd)) < 0)
		util_die(EXIT_ERR, "sending the command to %s: %s", addr, strerror(errno));
	/* a checkpoint may take as long as it takes; a dead coordinator is EOF */
	blocking = o.cmd.op == COORD_OP_MIGRATE ||
		   (o.cmd.op == COORD_OP_CHECKPOINT && (o.cmd.flags & COORD_CMD_BLOCKING));
	return read_reply(fd, addr, blocking ? -1 : CMD_TIMEOUT_MS);
}
