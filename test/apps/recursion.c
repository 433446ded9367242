/* recursion: the main thread's stack across checkpoint/restart. Each cycle
 * recurses with 4 KiB frames, calls t_ready at some depth, and after the
 * restart recurses further (so the stack grows below the part that was
 * checkpointed: the restored stack must still grow down), to about 6 MiB
 * under the default 8 MiB limit; on the way back every frame checks its
 * contents. Depths scale with RLIMIT_STACK if it is below 8 MiB. */
#include "../lib/harness.h"
#include <sys/resource.h>

#define FRAME 4096

static uint64_t checksum;

static uint64_t pat(int depth, int k, int i)
{
	return ((uint64_t)depth * 2654435761u) ^ ((uint64_t)k << 40) ^ ((uint64_t)i * 40503u);
}

static __attribute__((noinline)) int descend(int depth, int ready_at, int end, int k)
{
	uint64_t buf[FRAME / 8];
	int deepest;

	for (int i = 0; i < FRAME / 8; i++)
		buf[i] = pat(depth, k, i);
	if (depth == ready_at)
		t_ready(k);
	deepest = depth == end ? depth : descend(depth + 1, ready_at, end, k);
	for (int i = 0; i < FRAME / 8; i++)
		if (buf[i] != pat(depth, k, i))
			t_fail("cycle %d: frame at depth %d word %d changed", k, depth, i);
	checksum = t_hash(checksum, &buf[depth % (FRAME / 8)], 8);
	return deepest;
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	double budget = 8.0 * 1024 * 1024;
	/* fractions of the stack limit: READY depth, then final depth */
	static const double plan[3][2] = { { 0.375, 0.5 }, { 0.5, 0.75 }, { 0.25, 0.75 } };
	int per_mib;

	t_init(argc, argv);
	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < budget)
		budget = rl.rlim_cur;
	per_mib = 1024 * 1024 / (FRAME + 64);	/* frame plus call overhead */
	checksum = T_HASH_INIT;
	for (int k = 1; k <= 3; k++) {
		int ready_at = (int)(plan[k - 1][0] * budget / (1024 * 1024) * per_mib);
		int end = (int)(plan[k - 1][1] * budget / (1024 * 1024) * per_mib);
		int deepest = descend(0, ready_at, end, k);

		T_CHECK(deepest == end, "deepest %d", deepest);
		printf("cycle %d: READY at depth %d, then down to depth %d and back, frames intact, "
		       "checksum %016llx\n", k, ready_at, end, (unsigned long long)checksum);
	}
	t_pass();
}
