/* The signal wrappers' view for the rest of libcryo: the real libc entry
 * points, resolved once (wrap_signal_init) before anything else runs. */
#ifndef CRYO_MTCP_WRAP_SIGNAL_H
#define CRYO_MTCP_WRAP_SIGNAL_H
#include <signal.h>

#define CRYO_EXPORT __attribute__((visibility("default")))

extern int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
extern int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
/* Turns a sender's kernel pid in info->si_pid into its virtual pid, where
 * the field is one. Async-signal-safe. */
void wrap_signal_virtualize(int sig, siginfo_t *info);
/* The reverse: a virtual sender pid back to the kernel pid it is now. */
void wrap_signal_realize(int sig, siginfo_t *info);
/* Resolves the real functions. Idempotent; safe to call from any wrapper. */
void wrap_signal_init(void);

#endif /* CRYO_MTCP_WRAP_SIGNAL_H */
