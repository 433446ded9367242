/* libc wrappers that keep the checkpoint signal working whatever the
 * application does with signals: it can neither install a handler for it,
 * nor block it, nor wait for it (each call sees a copy of the mask or set
 * with the checkpoint signal removed), and its own view of that signal's
 * action is kept in a shadow. SA_SIGINFO handlers run behind a trampoline
 * that turns the sender's kernel pid in si_pid into its virtual pid, as
 * sigwaitinfo and sigtimedwait do for what they return.
 *
 * Each wrapper may run before the library's constructor (another
 * library's constructor can call it), so the real functions are resolved
 * lazily. */
#define LOG_PREFIX "signal: "
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "mtcp/wrap_signal.h"

int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
static int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);
static sighandler_t (*real_signal)(int, sighandler_t);
static int (*real_sigsuspend)(const sigset_t *);
static int (*real_sigwait)(const sigset_t *, int *);
static int (*real_sigwaitinfo)(const sigset_t *, siginfo_t *);
static int (*real_sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *);
static int (*real_ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
static int (*real_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);

/* What the application believes is installed for the checkpoint signal. */
static struct sigaction shadow;
/* The application's SA_SIGINFO actions, which run behind a trampoline
 * that shows them virtual pids. */
static struct sigaction app_action[65];

#define RESOLVE(name) \
	do { if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); } while (0)

void wrap_signal_init(void)
{
	RESOLVE(sigaction);
	RESOLVE(pthread_sigmask);
	RESOLVE(sigprocmask);
	RESOLVE(signal);
	RESOLVE(sigsuspend);
	RESOLVE(sigwait);
	RESOLVE(sigwaitinfo);
	RESOLVE(sigtimedwait);
	RESOLVE(ppoll);
	RESOLVE(pselect);
}

static int is_ckpt(int sig)
{
	return ckpt_signal && sig == ckpt_signal;
}

/* A copy of set without the checkpoint signal (NULL stays NULL). */
static const sigset_t *filtered(const sigset_t *set, sigset_t *copy)
{
	if (!set || !ckpt_signal || !sigismember(set, ckpt_signal))
		return set;
	*copy = *set;
	sigdelset(copy, ckpt_signal);
	return copy;
}

/* 1 if si_pid is a sender's pid for this signal and code (in the other
 * cases the same bytes hold an address, a timer id or nothing). */
static int has_sender_pid(int sig, const siginfo_t *info)
{
	int code = info->si_code;

	return code == SI_USER || code == SI_QUEUE || code == SI_TKILL || code == SI_MESGQ ||
	       (sig == SIGCHLD && code > 0);
}

void wrap_signal_virtualize(int sig, siginfo_t *info)
{
	if (info && has_sender_pid(sig, info) && info->si_pid > 0)
		info->si_pid = vpid_to_virt(info->si_pid);
}

void wrap_signal_realize(int sig, siginfo_t *info)
{
	if (info && has_sender_pid(sig, info) && info->si_pid > 0)
		info->si_pid = vpid_to_real(info->si_pid);
}

static void trampoline(int sig, siginfo_t *info, void *uc)
{
	void (*fn)(int, siginfo_t *, void *) = app_action[sig].sa_sigaction;

	wrap_signal_virtualize(sig, info);
	if (fn)
		fn(sig, info, uc);
}

CRYO_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct sigaction copy, prev_app;
	int r, wrapped;

	wrap_signal_init();
	if (is_ckpt(sig)) {
		if (old)
			*old = shadow;
		if (act)
			shadow = *act;
		return 0;
	}
	if (sig <= 0 || sig > 64)
		return real_sigaction(sig, act, old);
	prev_app = app_action[sig];
	if (act) {
		copy = *act;
		if (ckpt_signal)
			sigdelset(&copy.sa_mask, ckpt_signal);
		wrapped = (copy.sa_flags & SA_SIGINFO) && copy.sa_sigaction &&
			  copy.sa_handler != SIG_IGN && copy.sa_handler != SIG_DFL;
		if (wrapped) {
			app_action[sig] = copy;
			copy.sa_sigaction = trampoline;
		}
		act = &copy;
	}
	r = real_sigaction(sig, act, old);
	if (r == 0 && old && old->sa_sigaction == trampoline)
		*old = prev_app;	/* the program sees its own handler */
	return r;
}

CRYO_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	sighandler_t prev;

	wrap_signal_init();
	if (is_ckpt(sig)) {
		prev = shadow.sa_handler;
		shadow.sa_handler = handler;
		return prev;
	}
	return real_signal(sig, handler);
}

CRYO_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;

	wrap_signal_init();
	return real_sigprocmask(how, how == SIG_UNBLOCK ? set : filtered(set, &copy), old);
}

CRYO_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;

	wrap_signal_init();
	return real_pthread_sigmask(how, how == SIG_UNBLOCK ? set : filtered(set, &copy), old);
}

CRYO_EXPORT int sigsuspend(const sigset_t *mask)
{
	sigset_t copy;

	wrap_signal_init();
	return real_sigsuspend(filtered(mask, &copy));
}

CRYO_EXPORT int sigwait(const sigset_t *set, int *sig)
{
	sigset_t copy;

	wrap_signal_init();
	return real_sigwait(filtered(set, &copy), sig);
}

CRYO_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	sigset_t copy;
	int sig;

	wrap_signal_init();
	sig = real_sigwaitinfo(filtered(set, &copy), info);
	if (sig > 0)
		wrap_signal_virtualize(sig, info);
	return sig;
}

CRYO_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *ts)
{
	sigset_t copy;
	int sig;

	wrap_signal_init();
	sig = real_sigtimedwait(filtered(set, &copy), info, ts);
	if (sig > 0)
		wrap_signal_virtualize(sig, info);
	return sig;
}

CRYO_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	sigset_t copy;

	wrap_signal_init();
	return real_ppoll(fds, n, ts, filtered(mask, &copy));
}

CRYO_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
			const sigset_t *mask)
{
	sigset_t copy;

	wrap_signal_init();
	return real_pselect(n, r, w, e, ts, filtered(mask, &copy));
}
