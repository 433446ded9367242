/* The zombie plugin: children that had ended but were not reaped yet when
 * the checkpoint was taken.
 *
 * Such a child is in no image (its library left the computation when it
 * ended), yet its parent still means to wait for it: a shell's pipeline
 * whose first command has ended, the sleep of a background job, a command
 * that ended while the checkpoint began. Without it, the parent's waitpid
 * after a restart fails with ECHILD (bash then takes the job as lost,
 * gcc gives up). So at WRITE each process lists its children
 * (/proc/self/task/TID/children) and notes, for each one that has ended,
 * its virtual pid and how it ended (waitid with WNOWAIT, which leaves it
 * unreaped); a child still on its way out (PF_EXITING) is waited for a
 * little. After a restart the restarted process forks a stand-in per
 * zombie that ends at once the same way (the same exit status, or killed
 * by the same signal), so the program's wait finds it with the right
 * status and SIGCHLD arrives as before; once the pid map is known
 * (RESTART) the stand-in's kernel pid is added to it under the zombie's
 * virtual pid.
 *
 * Hooks: ckpt (threads parked: raw syscalls, no malloc; the table is this
 * file's static memory, which the image holds), restart (threads parked,
 * before the coordinator: fork the stand-ins), restart_share (the pid
 * map). */
#define LOG_PREFIX "zombie: "
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "plugin/zombie/zombie.h"

#define ZOMBIE_MAX 256
#define PF_EXITING 0x4

static struct zombie {
	pid_t vpid;	/* as the program knows it */
	int code;	/* CLD_EXITED, CLD_KILLED, CLD_DUMPED */
	int status;	/* exit status or signal */
	pid_t real;	/* the stand-in's kernel pid after a restart */
} zombies[ZOMBIE_MAX];
static int nzombies;

/* Reads a small /proc file into buf (terminated); its length or -1. */
static long read_small(const char *path, char *buf, size_t cap)
{
	long fd = sys_open(path, O_RDONLY | O_CLOEXEC, 0), n;

	if (sys_failed(fd))
		return -1;
	n = sys_read((int)fd, buf, cap - 1);
	sys_close((int)fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* The child is on its way out: PF_EXITING in /proc/PID/stat. */
static int exiting(pid_t pid)
{
	char path[64], buf[512];
	unsigned long flags = 0;
	const char *p;
	int field = 0;

	nolibc_snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	p = buf + nolibc_strlen(buf);
	while (p > buf && *p != ')')
		p--;
	/* after ") ": state ppid pgrp session tty tpgid flags */
	for (; *p && field < 7; p++)
		if (*p == ' ')
			field++;
	while (*p >= '0' && *p <= '9')
		flags = flags * 10 + (unsigned long)(*p++ - '0');
	return (flags & PF_EXITING) != 0;
}

/* Notes pid if it has ended (waiting up to 200 ms for one that is exiting). */
static void check_child(pid_t pid)
{
	siginfo_t si;
	int tries;

	for (tries = 0; tries < 200; tries++) {
		long r;

		nolibc_memset(&si, 0, sizeof(si));
		r = sys_call5(__NR_waitid, P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT, 0);
		if (sys_failed(r))
			return;	/* not our child after all */
		if (si.si_pid == pid)
			break;
		if (!exiting(pid))
			return;	/* alive: a process of the computation, or not ours to keep */
		sys_nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	if (si.si_pid != pid)
		return;
	if (nzombies >= ZOMBIE_MAX) {
		log_warn("more than %d ended children not reaped: child %d is not kept", ZOMBIE_MAX,
			 (int)vpid_to_virt(pid));
		return;
	}
	zombies[nzombies].vpid = vpid_to_virt(pid);
	zombies[nzombies].code = si.si_code;
	zombies[nzombies].status = si.si_status;
	zombies[nzombies].real = 0;
	nzombies++;
}

/* Every child of every thread of this process. */
static int zombie_ckpt(void)
{
	char buf[4096], path[64], list[4096];
	long dir, n;

	nzombies = 0;
	dir = sys_open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (sys_failed(dir)) {
		log_syserr((int)-dir, "open /proc/self/task");
		return 0;	/* not fatal: only ended children would be missing */
	}
	while ((n = sys_getdents64((int)dir, buf, sizeof(buf))) > 0) {
		long off = 0;

		while (off < n) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type;
				 char name[]; } *d = (void *)(buf + off);
			const char *p;
			long tid = 0;

			off += d->reclen;
			for (p = d->name; *p >= '0' && *p <= '9'; p++)
				tid = tid * 10 + (*p - '0');
			if (*p || p == d->name)
				continue;
			nolibc_snprintf(path, sizeof(path), "/proc/self/task/%ld/children", tid);
			if (read_small(path, list, sizeof(list)) <= 0)
				continue;
			for (p = list; *p;) {
				pid_t pid = 0;

				while (*p == ' ' || *p == '\n')
					p++;
				while (*p >= '0' && *p <= '9')
					pid = pid * 10 + (*p++ - '0');
				if (pid > 0)
					check_child(pid);
				else if (*p)
					p++;
			}
		}
	}
	sys_close((int)dir);
	if (nzombies)
		log_debug("%d ended children not reaped yet", nzombies);
	return 0;
}

/* In a fresh child: end the way the zombie did. Raw syscalls only. */
static void __attribute__((noreturn)) end_like(const struct zombie *z)
{
	if (z->code == CLD_KILLED || z->code == CLD_DUMPED) {
		struct rlimit nocore = { 0, 0 };
		struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl;
		uint64_t unblock = 1ull << (z->status - 1);

		nolibc_memset(&dfl, 0, sizeof(dfl));
		sys_call4(__NR_prlimit64, 0, RLIMIT_CORE, &nocore, NULL);
		sys_rt_sigaction(z->status, &dfl, NULL);
		sys_rt_sigprocmask(SIG_UNBLOCK, &unblock, NULL);
		sys_call2(__NR_kill, sys_getpid(), z->status);
	}
	for (;;)
		sys_call1(__NR_exit_group, z->code == CLD_EXITED ? z->status : 128 + z->status);
}

static int zombie_restart(void)
{
	int i;

	for (i = 0; i < nzombies; i++) {
		long pid = sys_call5(__NR_clone, SIGCHLD, 0, NULL, NULL, 0);

		if (pid == 0)
			end_like(&zombies[i]);
		if (sys_failed(pid)) {
			log_syserr((int)-pid, "fork a stand-in for ended child %d", (int)zombies[i].vpid);
			zombies[i].real = 0;
			continue;
		}
		zombies[i].real = (pid_t)pid;
	}
	if (nzombies)
		log_debug("%d ended children stand in again", nzombies);
	return 0;
}

static int zombie_restart_share(void)
{
	int i;

	for (i = 0; i < nzombies; i++)
		if (zombies[i].real > 0)
			vpid_map_add(zombies[i].vpid, zombies[i].real);
	return 0;
}

const struct cryo_plugin zombie_plugin = {
	.name = "zombie",
	.api = CRYO_PLUGIN_API,
	.ckpt = zombie_ckpt,
	.restart = zombie_restart,
	.restart_share = zombie_restart_share,
};
