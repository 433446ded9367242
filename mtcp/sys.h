/* Raw x86-64 system calls for code that cannot use libc: the freestanding
 * restorer, and the checkpoint path inside libcryo.so, which runs while the
 * application's threads (and maybe the libc locks they hold) are frozen.
 * Every sys_* returns the kernel's result: a value >= 0, or -errno, tested
 * with sys_failed(). This is the only file with inline assembly. */
#ifndef CRYO_MTCP_SYS_H
#define CRYO_MTCP_SYS_H
#include <stddef.h>
#include <stdint.h>
#include <asm/unistd.h>

static inline long sys_call6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define sys_call0(n)			sys_call6((n), 0, 0, 0, 0, 0, 0)
#define sys_call1(n, a)			sys_call6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys_call2(n, a, b)		sys_call6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys_call3(n, a, b, c)		sys_call6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys_call4(n, a, b, c, d)	sys_call6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys_call5(n, a, b, c, d, e)	sys_call6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

static inline int sys_failed(long ret)
{
	return (unsigned long)ret >= (unsigned long)-4095;
}

static inline long sys_read(int fd, void *buf, size_t n) { return sys_call3(__NR_read, fd, buf, n); }
static inline long sys_write(int fd, const void *buf, size_t n) { return sys_call3(__NR_write, fd, buf, n); }
static inline long sys_pread(int fd, void *buf, size_t n, long off) { return sys_call4(__NR_pread64, fd, buf, n, off); }
static inline long sys_open(const char *path, int flags, int mode) { return sys_call4(__NR_openat, -100, path, flags, mode); }
static inline long sys_close(int fd) { return sys_call1(__NR_close, fd); }
static inline long sys_lseek(int fd, long off, int whence) { return sys_call3(__NR_lseek, fd, off, whence); }
static inline long sys_ftruncate(int fd, long len) { return sys_call2(__NR_ftruncate, fd, len); }
static inline long sys_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	return sys_call6(__NR_mmap, (long)addr, (long)len, prot, flags, fd, off);
}
static inline long sys_munmap(void *addr, size_t len) { return sys_call2(__NR_munmap, addr, len); }
static inline long sys_mprotect(void *addr, size_t len, int prot) { return sys_call3(__NR_mprotect, addr, len, prot); }
static inline long sys_mremap(void *old, size_t olen, size_t nlen, int flags, void *naddr)
{
	return sys_call5(__NR_mremap, old, olen, nlen, flags, naddr);
}
static inline long sys_madvise(void *addr, size_t len, int advice) { return sys_call3(__NR_madvise, addr, len, advice); }
static inline long sys_memfd_create(const char *name, unsigned flags) { return sys_call2(__NR_memfd_create, name, flags); }
static inline long sys_getpid(void) { return sys_call0(__NR_getpid); }
static inline long sys_gettid(void) { return sys_call0(__NR_gettid); }
static inline long sys_tgkill(int tgid, int tid, int sig) { return sys_call3(__NR_tgkill, tgid, tid, sig); }
static inline long sys_rt_sigprocmask(int how, const uint64_t *set, uint64_t *old)
{
	return sys_call4(__NR_rt_sigprocmask, how, set, old, 8);
}
static inline long sys_rt_sigaction(int sig, const void *act, void *old)
{
	return sys_call4(__NR_rt_sigaction, sig, act, old, 8);
}
static inline long sys_rt_sigtimedwait(const uint64_t *set, void *info, const void *ts)
{
	return sys_call4(__NR_rt_sigtimedwait, set, info, ts, 8);
}
static inline long sys_rt_tgsigqueueinfo(int tgid, int tid, int sig, void *info)
{
	return sys_call4(__NR_rt_tgsigqueueinfo, tgid, tid, sig, info);
}
static inline long sys_rt_sigqueueinfo(int tgid, int sig, void *info)
{
	return sys_call3(__NR_rt_sigqueueinfo, tgid, sig, info);
}
static inline long sys_sigaltstack(const void *ss, void *old) { return sys_call2(__NR_sigaltstack, ss, old); }
static inline long sys_arch_prctl(int code, unsigned long addr) { return sys_call2(__NR_arch_prctl, code, addr); }
static inline long sys_prctl(int opt, unsigned long a, unsigned long b, unsigned long c, unsigned long d)
{
	return sys_call5(__NR_prctl, opt, a, b, c, d);
}
static inline long sys_set_tid_address(void *p) { return sys_call1(__NR_set_tid_address, p); }
static inline long sys_set_robust_list(void *head, size_t len) { return sys_call2(__NR_set_robust_list, head, len); }
static inline long sys_get_robust_list(int tid, void **head, size_t *len)
{
	return sys_call3(__NR_get_robust_list, tid, head, len);
}
static inline long sys_rseq(void *rseq, uint32_t len, int flags, uint32_t sig)
{
	return sys_call4(__NR_rseq, rseq, len, flags, sig);
}
static inline long sys_futex(volatile int *uaddr, int op, int val, const void *ts)
{
	return sys_call4(__NR_futex, uaddr, op, val, ts);
}
static inline long sys_sched_yield(void) { return sys_call0(__NR_sched_yield); }
static inline long sys_nanosleep(const void *req, void *rem) { return sys_call2(__NR_nanosleep, req, rem); }
static inline long sys_clock_gettime(int clk, void *ts) { return sys_call2(__NR_clock_gettime, clk, ts); }
static inline long sys_getdents64(int fd, void *buf, size_t n) { return sys_call3(__NR_getdents64, fd, buf, n); }
static inline long sys_fstat(int fd, void *st) { return sys_call2(__NR_fstat, fd, st); }
static inline long sys_rename(const char *a, const char *b) { return sys_call4(__NR_renameat, -100, a, -100, b); }
static inline long sys_unlink(const char *p) { return sys_call3(__NR_unlinkat, -100, p, 0); }
static inline long sys_fsync(int fd) { return sys_call1(__NR_fsync, fd); }
static inline long sys_brk(unsigned long b) { return sys_call1(__NR_brk, b); }
static inline long sys_ioctl(int fd, unsigned long req, void *arg) { return sys_call3(__NR_ioctl, fd, req, arg); }
static inline long sys_fcntl(int fd, int cmd, long arg) { return sys_call3(__NR_fcntl, fd, cmd, arg); }
static inline long sys_dup3(int a, int b, int flags) { return sys_call3(__NR_dup3, a, b, flags); }
static inline long sys_msync(void *addr, size_t len, int flags) { return sys_call3(__NR_msync, addr, len, flags); }
static inline __attribute__((noreturn)) void sys_exit_group(int code)
{
	for (;;)
		sys_call1(__NR_exit_group, code);
}
static inline __attribute__((noreturn)) void sys_exit_thread(int code)
{
	for (;;)
		sys_call1(__NR_exit, code);
}

/*
 * Resumable contexts (a minimal setjmp that the restorer can resume).
 * ctx_save() stores the callee-saved registers, the stack pointer and the
 * return address, and returns 0. Resuming it, later or in another process
 * with the same memory, makes that ctx_save() call return the value given
 * to ctx_resume(). No signal mask or FPU state is kept: callers save what
 * they need beside it.
 */
struct sys_ctx {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};
_Static_assert(sizeof(struct sys_ctx) == 64, "struct sys_ctx is part of the image format");

__attribute__((returns_twice)) long sys_ctx_save(struct sys_ctx *ctx);

/* Resume ctx with the given return value, on the current thread. ctx is
 * pinned to rdi, the one register the sequence does not load. */
static inline __attribute__((noreturn)) void sys_ctx_resume(const struct sys_ctx *ctx, long val)
{
	__asm__ volatile("mov 0(%0), %%rbx\n\t"
			 "mov 8(%0), %%rbp\n\t"
			 "mov 16(%0), %%r12\n\t"
			 "mov 24(%0), %%r13\n\t"
			 "mov 32(%0), %%r14\n\t"
			 "mov 40(%0), %%r15\n\t"
			 "mov 48(%0), %%rsp\n\t"
			 "jmp *56(%0)\n\t"
			 :
			 : "D"(ctx), "a"(val)
			 : "memory");
	__builtin_unreachable();
}

/* Switch to a new stack and call fn(arg) there; fn must not return. */
static inline __attribute__((noreturn)) void sys_switch_stack(void *stack_top, void (*fn)(void *), void *arg)
{
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "call *%1\n\t"
			 "ud2\n\t"
			 :
			 : "S"(stack_top), "a"(fn), "D"(arg)	/* not rbp: zeroed above */
			 : "memory");
	__builtin_unreachable();
}

/*
 * clone() for the restorer: the child starts on child_stack and calls
 * fn(arg); it must never return. Returns the child's tid in the parent, or
 * -errno. tls is the new fs base (CLONE_SETTLS), ctid the CLONE_CHILD_CLEARTID
 * address.
 */
static inline long sys_clone_thread(unsigned long flags, void *child_stack, void *ctid, unsigned long tls,
				    void (*fn)(void *), void *arg)
{
	long ret;
	register long r10 __asm__("r10") = (long)ctid;
	register long r8 __asm__("r8") = (long)tls;
	register long r9 __asm__("r9") = (long)fn;
	register long r12 __asm__("r12") = (long)arg;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %%r12, %%rdi\n\t"
			 "call *%%r9\n\t"
			 "ud2\n\t"
			 "1:\n\t"
			 : "=a"(ret)
			 : "a"(__NR_clone), "D"(flags), "S"(child_stack), "d"(0), "r"(r10), "r"(r8), "r"(r9),
			   "r"(r12)
			 : "rcx", "r11", "memory");
	return ret;
}

#endif /* CRYO_MTCP_SYS_H */
