/* The signal wrappers' view for the rest of libcryo: the real libc entry
 * points, resolved once (wrap_signal_init) before anything else runs. */
#ifndef CRYO_MTCP_WRAP_SIGNAL_H
#define CRYO_MTCP_WRAP_SIGNAL_H
#include <signal.h>

#define CRYO_EXPORT __attribute__((visibility("default")))

extern int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
extern int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
/* Resolves the real functions. Idempotent; safe to call from any wrapper. */
void wrap_signal_init(void);

#endif /* CRYO_MTCP_WRAP_SIGNAL_H */
