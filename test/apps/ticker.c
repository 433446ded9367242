/* ticker: the program scripts/demo.sh shows being checkpointed, killed and
 * restarted: it prints "tick N (sum S)" every 200 ms, with N and S kept in
 * ordinary variables, so a restarted ticker visibly carries on from the
 * image. Usage: ticker [TICKS] (default: until killed) */
#include "../lib/harness.h"

int main(int argc, char **argv)
{
	long ticks = argc > 1 ? atol(argv[1]) : -1;
	uint64_t sum = 0;

	t_init(argc, argv);
	for (long n = 1; ticks < 0 || n <= ticks; n++) {
		sum += (uint64_t)n * n;
		printf("tick %ld (sum of squares %llu)\n", n, (unsigned long long)sum);
		t_sleep_ms(200);
	}
	return 0;
}
