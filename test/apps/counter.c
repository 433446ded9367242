/* counter: the simplest test program. A single thread counts and prints a
 * line per step, with its state spread over locals, globals (data and bss)
 * and the heap; at three points it waits for a checkpoint/restart
 * (t_ready) and then checks that all of it is intact. Output depends only
 * on the step count. Usage: counter [STEPS_PER_PHASE] */
#include "../lib/harness.h"

#define HEAP_WORDS 4096

static uint64_t g_data = 0x1234567890abcdefull;	/* .data */
static uint64_t g_bss[256];			/* .bss */
static char g_text[64] = "counter state";

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

int main(int argc, char **argv)
{
	long steps = argc > 1 ? atol(argv[1]) : 40;
	uint64_t local_sum = 0, check;
	uint64_t *heap;
	long i = 0;
	int phase;

	t_init(argc, argv);
	heap = malloc(HEAP_WORDS * sizeof(*heap));
	T_CHECK(heap != NULL, "malloc");
	for (int w = 0; w < HEAP_WORDS; w++)
		heap[w] = mix(w);

	for (phase = 1; phase <= 4; phase++) {
		for (long n = 0; n < steps; n++, i++) {
			local_sum += mix(i);
			g_data = mix(g_data + i);
			g_bss[i % 256] += i;
			heap[i % HEAP_WORDS] ^= mix(i + 7);
			printf("step %ld local %016llx global %016llx\n", i,
			       (unsigned long long)local_sum, (unsigned long long)g_data);
			t_sleep_ms(5);
		}
		check = t_hash(T_HASH_INIT, heap, HEAP_WORDS * sizeof(*heap));
		check = t_hash(check, g_bss, sizeof(g_bss));
		check = t_hash(check, g_text, sizeof(g_text));
		if (phase == 4)
			break;
		t_ready(phase);
		/* everything must be exactly as before the checkpoint */
		T_CHECK(check == t_hash(t_hash(t_hash(T_HASH_INIT, heap, HEAP_WORDS * sizeof(*heap)),
					       g_bss, sizeof(g_bss)), g_text, sizeof(g_text)),
			"state changed across READY %d", phase);
		T_CHECK(strcmp(g_text, "counter state") == 0, "g_text");
		printf("phase %d ok, checksum %016llx\n", phase, (unsigned long long)check);
	}
	printf("done: %ld steps, sum %016llx, checksum %016llx\n", i,
	       (unsigned long long)local_sum, (unsigned long long)check);
	free(heap);
	t_pass();
}
