/* The restorer: freestanding code that turns the cryo_restart process into
 * the checkpointed one. restart/loader.c maps it (as a flat blob) at an
 * address no saved area uses, builds struct rst_args inside that mapping,
 * stages the saved pages in an arena that overlaps no saved area either,
 * blocks every signal and jumps to rst_entry() on a stack in the mapping.
 *
 * From there: unmap everything except the mapping, the arena and the vdso;
 * move the fresh vdso block to where the image had it; rebuild every area
 * (moving staged anonymous memory into place with mremap, mapping files,
 * copying the pages written in private file mappings and stacks); restore
 * brk, arg/env and auxv with PR_SET_MM_MAP; tell libcryo this is a restart;
 * clone the threads; and resume each thread (the leader last) at its saved
 * context inside libcryo's signal handler, which carries on from there.
 *
 * No libc, no errno, no TLS, no stack protector (see STYLE.md 2.4). Any
 * failure logs one line and exits: there is nothing left to return to. */
#define LOG_PREFIX "restorer: "
#include <stddef.h>
#include <stdint.h>
#include <asm/prctl.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/signal.h>
#include "mtcp/log.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "restart/plan.h"
#include "restart/restorer/restorer.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#define PAGE 4096ul
#define RSEQ_SIG_X86 0x53053053u
#define RSEQ_LEN 32u

static __attribute__((noreturn)) void die(void)
{
	sys_exit_group(127);
}

#define CHECK(expr, ...)                                      \
	do {                                                  \
		long _r = (long)(expr);                       \
		if (sys_failed(_r)) {                         \
			log_syserr((int)-_r, __VA_ARGS__);    \
			die();                                \
		}                                             \
	} while (0)

static struct rst_area *areas(struct rst_args *a)
{
	return (struct rst_area *)((char *)a + a->areas_off);
}

static struct rst_thread *threads(struct rst_args *a)
{
	return (struct rst_thread *)((char *)a + a->threads_off);
}

static struct image_run *runs(struct rst_args *a)
{
	return (struct image_run *)((char *)a + a->runs_off);
}

/* Everything but the keep ranges goes: cryo_restart's code, libc, heap, stack. */
static void unmap_all_but_kept(struct rst_args *a)
{
	struct plan_range keep[RST_KEEP_MAX], gaps[RST_KEEP_MAX + 1];
	size_t n = a->nkeep, ngaps, i;

	nolibc_memcpy(keep, a->keep, n * sizeof(keep[0]));
	plan_sort(keep, n);
	n = plan_merge(keep, n);
	ngaps = plan_gaps(keep, n, 0, a->task_size, gaps, RST_KEEP_MAX + 1);
	for (i = 0; i < ngaps && i < RST_KEEP_MAX + 1; i++)
		CHECK(sys_munmap((void *)gaps[i].start, gaps[i].end - gaps[i].start),
		      "munmap %p-%p", (void *)gaps[i].start, (void *)gaps[i].end);
}

static void move(uint64_t from, uint64_t len, uint64_t to)
{
	CHECK(sys_mremap((void *)from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)to),
	      "mremap %p (%llu bytes) to %p", (void *)from, (unsigned long long)len, (void *)to);
}

static void move_vdso(struct rst_args *a)
{
	if (!a->vdso_len || a->vdso_cur == a->vdso_dst)
		return;
	if (a->vdso_cur < a->vdso_dst + a->vdso_len && a->vdso_dst < a->vdso_cur + a->vdso_len) {
		move(a->vdso_cur, a->vdso_len, a->vdso_tmp);
		move(a->vdso_tmp, a->vdso_len, a->vdso_dst);
	} else {
		move(a->vdso_cur, a->vdso_len, a->vdso_dst);
	}
}

/* Copies an area's saved runs from its staging slice to the area itself. */
static void copy_runs(struct rst_args *a, const struct rst_area *ar)
{
	const struct image_run *r = runs(a) + ar->run_first;
	uint32_t i;

	for (i = 0; i < ar->nruns; i++) {
		uint64_t off = r[i].first * PAGE;

		nolibc_memcpy((void *)(ar->start + off), (const void *)(ar->stage + off),
			      r[i].count * PAGE);
	}
}

static void restore_area(struct rst_args *a, const struct rst_area *ar)
{
	uint64_t len = ar->end - ar->start;
	int prot = (int)ar->prot, wprot = prot | PROT_READ | PROT_WRITE;
	int fixed = MAP_FIXED | (int)ar->map_flags_extra;
	void *at = (void *)ar->start;
	long fd;

	switch (ar->kind) {
	case IMAGE_AREA_ANON:
		if (ar->stage) {
			move(ar->stage, len, ar->start);
			CHECK(sys_mprotect(at, len, prot), "mprotect %p", at);
		} else {
			CHECK(sys_mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | fixed, -1, 0),
			      "mmap anonymous %p-%p", at, (void *)ar->end);
		}
		break;
	case IMAGE_AREA_STACK:
		CHECK(sys_mmap(at, len, wprot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | fixed, -1, 0),
		      "mmap stack %p-%p", at, (void *)ar->end);
		copy_runs(a, ar);
		CHECK(sys_mprotect(at, len, prot), "mprotect %p", at);
		break;
	case IMAGE_AREA_FILE_PRIVATE:
		CHECK(sys_mmap(at, len, ar->nruns ? wprot : prot, MAP_PRIVATE | fixed, ar->fd, (long)ar->pgoff),
		      "mmap file (fd %d) at %p-%p", ar->fd, at, (void *)ar->end);
		if (ar->nruns) {
			copy_runs(a, ar);
			CHECK(sys_mprotect(at, len, prot), "mprotect %p", at);
		}
		break;
	case IMAGE_AREA_FILE_SHARED:
		CHECK(sys_mmap(at, len, prot, MAP_SHARED | fixed, ar->fd, (long)ar->pgoff),
		      "mmap shared file (fd %d) at %p-%p", ar->fd, at, (void *)ar->end);
		break;
	case IMAGE_AREA_SHARED_ANON:
		fd = sys_memfd_create("cryo-shared", 0);
		CHECK(fd, "memfd_create for %p", at);
		CHECK(sys_ftruncate((int)fd, (long)len), "ftruncate memfd to %llu", (unsigned long long)len);
		CHECK(sys_mmap(at, len, wprot, MAP_SHARED | fixed, (int)fd, 0), "mmap shared memory at %p", at);
		sys_close((int)fd);
		copy_runs(a, ar);
		CHECK(sys_mprotect(at, len, prot), "mprotect %p", at);
		break;
	default:
		break;	/* VDSO and SKIP: nothing to map */
	}
}

static void restore_mm(struct rst_args *a)
{
	long ret;

	if (!a->mm_valid)
		return;
	a->mm.auxv = (uint64_t)(uintptr_t)a->auxv;
	a->mm.exe_fd = (uint32_t)-1;
	ret = sys_prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&a->mm, sizeof(a->mm), 0);
	if (sys_failed(ret))
		log_at(LOG_WARN, LOG_WHERE, (int)-ret,
		       "PR_SET_MM_MAP (brk, arguments, auxv) not restored; the program runs on");
}

/* Per-thread kernel state, then jump into libcryo. Runs on each thread. */
static __attribute__((noreturn)) void resume_thread(struct rst_thread *th)
{
	const struct image_thread *t = &th->t;
	long ret;

	if (t->robust_list)
		sys_set_robust_list((void *)t->robust_list, t->robust_len);
	if (t->rseq) {
		ret = sys_rseq((void *)t->rseq, (uint32_t)t->rseq_len, 0, (uint32_t)t->rseq_sig);
		if (sys_failed(ret))
			log_at(LOG_WARN, LOG_WHERE, (int)-ret, "rseq registration of thread %u", t->tid);
	}
	if (t->altstack_size && !(t->altstack_flags & 2 /* SS_DISABLE */)) {
		struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss = {
			t->altstack_sp, 0, 0, t->altstack_size };
		sys_sigaltstack(&ss, 0);
	}
	sys_rt_sigprocmask(SIG_SETMASK, &t->sigmask, 0);
	sys_ctx_resume((const struct sys_ctx *)t->ctx, 1);
}

static __attribute__((noreturn)) void thread_start(void *arg)
{
	resume_thread(arg);
}

static void spawn_threads(struct rst_args *a, struct rst_thread **leader)
{
	const unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				    CLONE_SYSVSEM | CLONE_SETTLS | CLONE_CHILD_CLEARTID;
	struct rst_thread *th = threads(a);
	uint32_t i;

	*leader = 0;
	for (i = 0; i < a->nthreads; i++) {
		if (th[i].t.flags & IMAGE_THREAD_MAIN) {
			*leader = &th[i];
			continue;
		}
		CHECK(sys_clone_thread(flags, (void *)th[i].stack_top, (void *)th[i].t.clear_tid,
				       th[i].t.fs_base, thread_start, &th[i]),
		      "clone thread %u", th[i].t.tid);
	}
}

static void close_fds(struct rst_args *a)
{
	struct rst_area *ar = areas(a);
	uint32_t i;

	for (i = 0; i < a->nareas; i++) {
		uint32_t j;

		if (ar[i].fd < 0)
			continue;
		sys_close(ar[i].fd);
		for (j = i + 1; j < a->nareas; j++)	/* several areas share one fd */
			if (ar[j].fd == ar[i].fd)
				ar[j].fd = -1;
	}
	for (i = 0; i < 8; i++)
		if (a->close_fds[i] >= 0)
			sys_close(a->close_fds[i]);
}

void rst_entry(struct rst_args *a)
{
	struct rst_thread *leader;
	uint32_t i;

	log_setup(a->log_level, a->log_fd);
	log_set_ident("cryo_restart");
	if (a->magic != RST_MAGIC) {
		log_err("bad arguments");
		die();
	}
	unmap_all_but_kept(a);
	move_vdso(a);
	for (i = 0; i < a->nareas; i++)
		restore_area(a, &areas(a)[i]);
	/* Anything not moved out of the arena (copy kinds) goes now. The arena
	 * overlaps no saved area, so this cannot hit restored memory. */
	if (a->stage_len)
		sys_munmap((void *)a->stage_start, a->stage_len);
	close_fds(a);
	restore_mm(a);
	if (a->restart_info_addr) {
		a->info.magic = CRYO_RESTART_MAGIC;
		nolibc_memcpy((void *)a->restart_info_addr, &a->info, sizeof(a->info));
	}
	log_debug("memory restored: %u areas; starting %u threads", a->nareas, a->nthreads);
	spawn_threads(a, &leader);
	if (!leader) {
		log_err("the image has no main thread");
		die();
	}
	CHECK(sys_arch_prctl(ARCH_SET_FS, leader->t.fs_base), "set the main thread's fs base");
	sys_set_tid_address((void *)leader->t.clear_tid);
	resume_thread(leader);
}
