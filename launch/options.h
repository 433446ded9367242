/* cryo_launch's decisions, kept apart from launch.c so they can be unit
 * tested: option parsing, the LD_PRELOAD value and the PATH search. Pure
 * functions (no environment changes, no output); used only by launch.c. */
#ifndef CRYO_LAUNCH_OPTIONS_H
#define CRYO_LAUNCH_OPTIONS_H
#include <stddef.h>

/* How to find the coordinator. */
enum launch_mode {
	LAUNCH_ENSURE = 0,	/* use the one at the address, start one if none (default) */
	LAUNCH_JOIN,		/* --join: there must be one */
	LAUNCH_NEW,		/* --new-coordinator: start one; the port must be free */
};

struct launch_opts {
	char host[256];
	int port;
	const char *ckptdir;	/* as given (NULL: not given) */
	long interval;		/* seconds, -1: not given */
	enum launch_mode mode;
	int exit_after;		/* --exit-after-ckpt */
	int prog;		/* index in argv of PROGRAM */
};

/* What launch_parse found. */
enum launch_parse_res {
	LAUNCH_RUN = 0,		/* run argv[o->prog] */
	LAUNCH_HELP,		/* --help given */
	LAUNCH_VERSION,		/* --version given */
	LAUNCH_USAGE_ERR,	/* err holds one line */
};

/* Parses cryo_launch's options up to the first non-option (or "--"),
 * filling *o from scratch: the address starts from coord_default_addr()
 * (the environment) and --coord overrides it. err (errsz bytes) gets one
 * line on LAUNCH_USAGE_ERR. */
enum launch_parse_res launch_parse(int argc, char **argv, struct launch_opts *o, char *err,
				   size_t errsz);
/* The LD_PRELOAD value: lib first, then the user's old value (space or
 * colon separated, may be NULL), without a second copy of lib. 0, or -1 if
 * it does not fit in size bytes. */
int launch_preload(const char *lib, const char *old, char *buf, size_t size);
/* Finds name as execvp would: a name with a '/' is taken as is, else it
 * is looked up in each directory of path (NULL: glibc's default
 * "/bin:/usr/bin"; an empty entry: the current directory). 0 with the path
 * in out, or -1 with errno ENOENT (no such program) or EACCES (found, not
 * executable). */
int launch_find_program(const char *name, const char *path, char *out, size_t size);

#endif /* CRYO_LAUNCH_OPTIONS_H */
