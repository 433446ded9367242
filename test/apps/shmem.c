/* shmem: a parent and a child on shared memory across checkpoints.
 *
 * - A MAP_SHARED|MAP_ANONYMOUS area with a process-shared semaphore pair
 *   (sem_init, pshared) and a counter: the two take turns, each adding one
 *   and waking the other, 1000 turns per phase.
 * - A POSIX named semaphore (sem_open, then sem_unlink, as Python's
 *   multiprocessing does: a deleted /dev/shm file mapped shared) that the
 *   child posts once per phase.
 * - Pages of the shared area that only the child wrote: the parent never
 *   touches them before the checkpoint, so only the object, not its own
 *   page table, holds them.
 * After each restart, every value is checked and the turns go on: writes
 * of one process must be seen by the other, so the area must be one again. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define TURNS 1000
#define PAGES 64

struct shared {
	sem_t to_child, to_parent;
	volatile long counter;
	volatile int phase;
};

int main(int argc, char **argv)
{
	struct shared *sh;
	unsigned char *only_child;
	char name[64];
	sem_t *named;
	pid_t c;
	int status;

	t_init(argc, argv);
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	only_child = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || only_child == MAP_FAILED)
		t_fail("mmap");
	if (sem_init(&sh->to_child, 1, 0) < 0 || sem_init(&sh->to_parent, 1, 0) < 0)
		t_fail("sem_init");
	snprintf(name, sizeof(name), "/cryo-shmem-%d", (int)getpid());
	named = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
	if (named == SEM_FAILED)
		t_fail("sem_open: %s", strerror(errno));
	sem_unlink(name);

	c = fork();
	if (c < 0)
		t_fail("fork");
	if (c == 0) {
		for (int k = 1; k <= 4; k++) {
			for (int i = 0; i < TURNS; i++) {
				while (sem_wait(&sh->to_child) < 0)
					if (errno != EINTR)
						_exit(2);
				sh->counter++;
				sem_post(&sh->to_parent);
			}
			for (int p = 0; p < PAGES; p++)
				only_child[p * 4096] = (unsigned char)(k * 16 + p);
			sem_post(named);
		}
		_exit(5);
	}
	for (int k = 1; k <= 4; k++) {
		for (int i = 0; i < TURNS; i++) {
			sh->counter++;
			sem_post(&sh->to_child);
			while (sem_wait(&sh->to_parent) < 0)
				if (errno != EINTR)
					t_fail("sem_wait: %s", strerror(errno));
		}
		while (sem_wait(named) < 0)
			if (errno != EINTR)
				t_fail("named sem_wait: %s", strerror(errno));
		printf("phase %d: counter %ld\n", k, sh->counter);
		if (k < 4) {
			fflush(stdout);
			t_ready(k);
		}
		for (int p = 0; p < PAGES; p++)
			if (only_child[p * 4096] != (unsigned char)(k * 16 + p))
				t_fail("phase %d: page %d of the child's is %d", k, p, only_child[p * 4096]);
		printf("  the child's pages ok\n");
	}
	if (waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 5)
		t_fail("child status %#x", status);
	printf("child ok, counter %ld\n", sh->counter);
	t_pass();
}
