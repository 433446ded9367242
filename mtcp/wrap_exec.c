/* libc wrappers that start programs: every exec* entry point, posix_spawn
 * and posix_spawnp, system, popen and pclose (see wrap_exec.h).
 *
 * The program does not see cryo's CRYO_* variables (exec_env_init takes
 * them out of environ before main), so each wrapper hands them back in the
 * environment it gives the kernel: the variables kept at start (the
 * program's own CRYO_* settings in that environment win), LD_PRELOAD with
 * libcryo.so in it, and for an exec of this very process its identity
 * (CRYO_EXEC, from ckpt_exec_begin). glibc's execv, execvp, execl*,
 * system and popen reach execve or posix_spawn inside libc, not through
 * the PLT, so each is wrapped on its own: the exec family on the real
 * execve, execvpe, fexecve and execveat with the patched environment;
 * system and popen are rebuilt on the posix_spawn wrapper (the shell they
 * run must join the computation too), pclose with them.
 *
 * The environment is built without malloc (the stack, or mmap for a large
 * one): a vfork child, which shares the parent's memory and may not take
 * its locks, calls these wrappers too. */
#define LOG_PREFIX "exec: "
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "mtcp/wrap_exec.h"
#include "mtcp/wrap_signal.h"

#define PREFIX "CRYO_"
#define PREFIX_LEN 5
#define MAX_KEPT 64		/* CRYO_* variables kept */
#define MAX_SET 8		/* of them replaced after a restart */
#define SET_LEN 1024
#define STACK_ENVP 512		/* environments up to this many entries: on the stack */
#define IDENT_LEN 160
#define SHELL "/bin/sh"

extern char **environ;

static int ready;			/* exec_env_init ran */
static const char *kept[MAX_KEPT];	/* "NAME=value", in the initial environment */
static size_t nkept;
static char set_buf[MAX_SET][SET_LEN];	/* replacements: no malloc after a restart */
static size_t nset;
static char lib_path[1024];		/* libcryo.so as loaded */

static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);
static int (*real_execveat)(int, const char *, char *const[], char *const[], int);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			       const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
				const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_system)(const char *);
static FILE *(*real_popen)(const char *, const char *);
static int (*real_pclose)(FILE *);

#define RESOLVE(name) \
	do { if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); } while (0)

/* Length of the name in "NAME=value" (the whole string if no '='). */
static size_t name_len(const char *s)
{
	const char *eq = strchr(s, '=');

	return eq ? (size_t)(eq - s) : strlen(s);
}

static int same_name(const char *a, const char *b)
{
	size_t n = name_len(a);

	return n == name_len(b) && !strncmp(a, b, n);
}

void exec_env_init(void)
{
	Dl_info di;
	char **r, **w;

	if (dladdr((void *)exec_env_init, &di) && di.dli_fname && di.dli_fname[0] == '/')
		nolibc_strlcpy(lib_path, di.dli_fname, sizeof(lib_path));
	if (environ) {
		for (r = w = environ; *r; r++) {
			/* CRYO_TEST_*: the test harness's, not the library's */
			if (strncmp(*r, PREFIX, PREFIX_LEN) || !strncmp(*r, PREFIX "TEST_", PREFIX_LEN + 5)) {
				*w++ = *r;
				continue;
			}
			/* The identity is for this program alone, never passed on. */
			if (!same_name(*r, EXEC_ENV_IDENT "=") && nkept < MAX_KEPT)
				kept[nkept++] = *r;
		}
		*w = NULL;
	}
	ready = 1;
}

void exec_env_set(const char *name, const char *value)
{
	size_t i, n = strlen(name);
	char *slot;

	for (i = 0; i < nkept; i++)
		if (name_len(kept[i]) == n && !strncmp(kept[i], name, n))
			break;
	if (!value) {
		if (i < nkept)
			kept[i] = kept[--nkept];
		return;
	}
	if (i == nkept && nkept == MAX_KEPT)
		return;
	/* Replaced before (an earlier restart): its slot again. */
	if (i < nkept && kept[i] >= set_buf[0] && kept[i] < set_buf[MAX_SET]) {
		slot = (char *)kept[i];
	} else if (nset == MAX_SET) {
		log_warn("cannot pass %s to new programs: too many replaced variables", name);
		return;
	} else {
		slot = set_buf[nset++];
	}
	nolibc_snprintf(slot, SET_LEN, "%s=%s", name, value);
	kept[i] = slot;
	if (i == nkept)
		nkept++;
}

/* The environment a new program gets: envp, the kept variables it does not
 * set itself, LD_PRELOAD naming libcryo.so, and ident if not empty. */
struct envbuf {
	char **v;		/* the array (stack or mmap) */
	size_t len;		/* its size in bytes if mapped, else 0 */
	char *stack[STACK_ENVP + MAX_KEPT + 4];
	char preload[8192];
};

static int has_lib(const char *preload_entry)
{
	const char *p = preload_entry + sizeof("LD_PRELOAD=") - 1;

	return lib_path[0] && strstr(p, lib_path) != NULL;
}

static char *const *build_env(char *const envp[], const char *ident, struct envbuf *b)
{
	size_t n = 0, k = 0, i, j, cap;
	int have_preload = 0;

	b->len = 0;
	if (!ready)
		return envp;
	while (envp && envp[n])
		n++;
	cap = n + nkept + 4;
	if (cap <= sizeof(b->stack) / sizeof(b->stack[0])) {
		b->v = b->stack;
	} else {
		long p = sys_mmap(NULL, cap * sizeof(char *), PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (sys_failed(p))
			return envp;	/* the program runs, maybe not under cryo */
		b->v = (char **)p;
		b->len = cap * sizeof(char *);
	}
	for (i = 0; i < n; i++) {
		const char *e = envp[i];

		if (!strncmp(e, EXEC_ENV_IDENT "=", sizeof(EXEC_ENV_IDENT)))
			continue;
		if (!strncmp(e, "LD_PRELOAD=", 11)) {
			have_preload = 1;
			if (!has_lib(e)) {
				nolibc_snprintf(b->preload, sizeof(b->preload), "LD_PRELOAD=%s%s%s", lib_path,
						e[11] ? ":" : "", e + 11);
				e = b->preload;
			}
		}
		b->v[k++] = (char *)e;
	}
	for (j = 0; j < nkept; j++) {
		for (i = 0; i < n; i++)
			if (same_name(envp[i], kept[j]))
				break;
		if (i == n)
			b->v[k++] = (char *)kept[j];
	}
	if (!have_preload && lib_path[0]) {
		nolibc_snprintf(b->preload, sizeof(b->preload), "LD_PRELOAD=%s", lib_path);
		b->v[k++] = b->preload;
	}
	if (ident && ident[0])
		b->v[k++] = (char *)ident;
	b->v[k] = NULL;
	return b->v;
}

static void free_env(struct envbuf *b)
{
	if (b->len)
		sys_munmap(b->v, b->len);
}

/* ---- the exec family ---- */

enum exec_kind { EK_PATH, EK_SEARCH, EK_FD, EK_AT };

/* Runs one exec with the patched environment; returns only on failure. */
static int do_exec(enum exec_kind kind, int dirfd, const char *path, char *const argv[],
		   char *const envp[], int flags)
{
	char ident[IDENT_LEN];
	struct envbuf b;
	char *const *env;
	int r, owner = ready && ckpt_is_owner();

	sigset_t park, old;

	ident[0] = '\0';
	if (owner)
		ckpt_exec_begin(ident, sizeof(ident));
	env = build_env(envp, ident, &b);
	/* Not parked inside execve: a park signal queued while the kernel
	 * replaces the program would meet the new one before its library
	 * could take it. Blocked, it stays pending across the exec and the
	 * new program's library, which unblocks it once its handler is in,
	 * takes it as a stray (the checkpoint itself reaches the new program
	 * as the SUSPEND still waiting on its connection). */
	sigemptyset(&park);
	sigaddset(&park, ckpt_signal);
	if (real_pthread_sigmask)
		real_pthread_sigmask(SIG_BLOCK, &park, &old);
	switch (kind) {
	case EK_PATH:
		RESOLVE(execve);
		r = real_execve(path, argv, env);
		break;
	case EK_SEARCH:
		RESOLVE(execvpe);
		r = real_execvpe(path, argv, env);
		break;
	case EK_FD:
		RESOLVE(fexecve);
		r = real_fexecve(dirfd, argv, env);
		break;
	default:
		RESOLVE(execveat);
		if (!real_execveat) {
			errno = ENOSYS;
			r = -1;
			break;
		}
		r = real_execveat(dirfd, path, argv, env, flags);
		break;
	}
	{
		int e = errno;

		if (real_pthread_sigmask)
			real_pthread_sigmask(SIG_SETMASK, &old, NULL);
		free_env(&b);
		if (owner)
			ckpt_exec_end();
		errno = e;
	}
	return r;
}

CRYO_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_exec(EK_PATH, -1, path, argv, envp, 0);
}

CRYO_EXPORT int execv(const char *path, char *const argv[])
{
	return do_exec(EK_PATH, -1, path, argv, environ, 0);
}

CRYO_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_exec(EK_SEARCH, -1, file, argv, envp, 0);
}

CRYO_EXPORT int execvp(const char *file, char *const argv[])
{
	return do_exec(EK_SEARCH, -1, file, argv, environ, 0);
}

CRYO_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return do_exec(EK_FD, fd, NULL, argv, envp, 0);
}

CRYO_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	return do_exec(EK_AT, dirfd, path, argv, envp, flags);
}

/* execl, execle, execlp: the variadic list into an array on the stack. */
#define COLLECT_ARGS(arg, last, argv)                                   \
	size_t argc_ = 1;                                               \
	va_list ap_;                                                    \
	va_start(ap_, last);                                            \
	while (va_arg(ap_, char *))                                     \
		argc_++;                                                \
	va_end(ap_);                                                    \
	char *argv[argc_ + 1];                                          \
	argv[0] = (char *)(arg);                                        \
	va_start(ap_, last);                                            \
	for (size_t i_ = 1; i_ <= argc_; i_++)                          \
		argv[i_] = va_arg(ap_, char *);                         \

CRYO_EXPORT int execl(const char *path, const char *arg, ...)
{
	COLLECT_ARGS(arg, arg, argv);
	va_end(ap_);
	return do_exec(EK_PATH, -1, path, argv, environ, 0);
}

CRYO_EXPORT int execlp(const char *file, const char *arg, ...)
{
	COLLECT_ARGS(arg, arg, argv);
	va_end(ap_);
	return do_exec(EK_SEARCH, -1, file, argv, environ, 0);
}

CRYO_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *const *envp;

	COLLECT_ARGS(arg, arg, argv);
	envp = va_arg(ap_, char *const *);	/* after the NULL ending the list */
	va_end(ap_);
	return do_exec(EK_PATH, -1, path, argv, envp, 0);
}

/* ---- posix_spawn, system, popen ---- */

static int spawn(int search, pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct envbuf b;
	char *const *env;
	int r;

	RESOLVE(posix_spawn);
	RESOLVE(posix_spawnp);
	/* A new process: it registers as one from its constructor. */
	env = build_env(envp, NULL, &b);
	r = search ? real_posix_spawnp(pid, path, fa, attr, argv, env)
		   : real_posix_spawn(pid, path, fa, attr, argv, env);
	free_env(&b);
	return r;
}

CRYO_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return spawn(0, pid, path, fa, attr, argv, envp);
}

CRYO_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			     const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return spawn(1, pid, file, fa, attr, argv, envp);
}

/* waitpid on a child spawned here, past EINTR: by its virtual pid, which
 * is another kernel pid after a restart (the wait returns EINTR then). */
static pid_t wait_child(pid_t pid, int *status)
{
	unsigned e;
	long r;

	do {
		e = vpid_epoch();
		r = sys_call4(__NR_wait4, vpid_to_real(pid), status, 0, NULL);
		/* ECHILD after a restart: the kernel restarted the wait with
		 * the child's old kernel pid */
	} while (r == -EINTR || (r == -ECHILD && vpid_epoch() != e));
	if (sys_failed(r)) {
		errno = (int)-r;
		return -1;
	}
	return pid;
}

/* system(): as glibc's, on the posix_spawn wrapper: SIGINT and SIGQUIT
 * ignored and SIGCHLD blocked in the caller meanwhile, the shell with
 * their defaults and the caller's mask. */
CRYO_EXPORT int system(const char *line)
{
	struct sigaction ign, intr, quit;
	sigset_t chld, omask, def;
	posix_spawnattr_t sa;
	char *argv[] = { "sh", "-c", "--", (char *)line, NULL };
	int status = -1, r;
	pid_t pid;

	RESOLVE(system);
	if (!ready)
		return real_system(line);
	if (!line)
		return access(SHELL, X_OK) == 0;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &intr);
	sigaction(SIGQUIT, &ign, &quit);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &omask);
	sigemptyset(&def);
	if (intr.sa_handler != SIG_IGN)
		sigaddset(&def, SIGINT);
	if (quit.sa_handler != SIG_IGN)
		sigaddset(&def, SIGQUIT);
	posix_spawnattr_init(&sa);
	posix_spawnattr_setsigmask(&sa, &omask);
	posix_spawnattr_setsigdefault(&sa, &def);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	r = spawn(0, &pid, SHELL, NULL, &sa, argv, environ);
	posix_spawnattr_destroy(&sa);
	if (r == 0) {
		if (wait_child(pid, &status) != pid)
			status = -1;
	} else {
		status = W_EXITCODE(127, 0);	/* as a shell that could not run */
	}
	sigaction(SIGINT, &intr, NULL);
	sigaction(SIGQUIT, &quit, NULL);
	sigprocmask(SIG_SETMASK, &omask, NULL);
	return status;
}

/* The streams popen() returned, with their shell's pid. */
struct popen_ent {
	FILE *f;
	pid_t pid;
	struct popen_ent *next;
};
static struct popen_ent *popen_list;
static pthread_mutex_t popen_lock = PTHREAD_MUTEX_INITIALIZER;

CRYO_EXPORT FILE *popen(const char *cmd, const char *mode)
{
	char *argv[] = { "sh", "-c", "--", (char *)cmd, NULL };
	posix_spawn_file_actions_t fa;
	struct popen_ent *e, *o;
	int p[2], reading, cloexec, mine, theirs, std, r;
	FILE *f = NULL;
	pid_t pid;

	RESOLVE(popen);
	if (!ready)
		return real_popen(cmd, mode);
	if (!mode || (mode[0] != 'r' && mode[0] != 'w') ||
	    (mode[1] && mode[1] != 'e') || (mode[1] && mode[2])) {
		errno = EINVAL;
		return NULL;
	}
	reading = mode[0] == 'r';
	cloexec = mode[1] == 'e';
	e = malloc(sizeof(*e));
	if (!e)
		return NULL;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(e);
		return NULL;
	}
	mine = reading ? p[0] : p[1];
	theirs = reading ? p[1] : p[0];
	std = reading ? 1 : 0;
	posix_spawn_file_actions_init(&fa);
	/* dup2 onto itself clears close-on-exec (glibc >= 2.29) */
	posix_spawn_file_actions_adddup2(&fa, theirs, std);
	pthread_mutex_lock(&popen_lock);
	/* POSIX: the streams of earlier popen calls are closed in the child */
	for (o = popen_list; o; o = o->next) {
		int fd = fileno(o->f);

		if (fd >= 0 && fd != std)
			posix_spawn_file_actions_addclose(&fa, fd);
	}
	r = spawn(0, &pid, SHELL, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(theirs);
	if (r == 0) {
		if (!cloexec)
			fcntl(mine, F_SETFD, 0);
		f = fdopen(mine, reading ? "r" : "w");
	}
	if (!f) {
		int err = r ? r : errno;

		close(mine);
		if (r == 0)
			wait_child(pid, NULL);
		pthread_mutex_unlock(&popen_lock);
		free(e);
		errno = err;
		return NULL;
	}
	e->f = f;
	e->pid = pid;
	e->next = popen_list;
	popen_list = e;
	pthread_mutex_unlock(&popen_lock);
	return f;
}

CRYO_EXPORT int pclose(FILE *f)
{
	struct popen_ent **pp, *e = NULL;
	int status;

	pthread_mutex_lock(&popen_lock);
	for (pp = &popen_list; *pp; pp = &(*pp)->next)
		if ((*pp)->f == f) {
			e = *pp;
			*pp = e->next;
			break;
		}
	pthread_mutex_unlock(&popen_lock);
	if (!e) {
		RESOLVE(pclose);
		return real_pclose(f);
	}
	fclose(f);
	if (wait_child(e->pid, &status) != e->pid)
		status = -1;
	free(e);
	return status;
}
