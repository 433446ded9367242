/* mremap: anonymous regions resized and moved with mremap() before and
 * after checkpoints. One region grows (moving), one shrinks, one grows in
 * place into space freed above it, one is moved to a fixed address inside
 * a reservation. After each restart every region's contents are checked and
 * the restored regions are grown, shrunk and moved again, which only works
 * if they came back as ordinary anonymous mappings of the right size. */
#include "../lib/harness.h"
#include <sys/mman.h>

#define PAGE 4096ul

struct region {
	const char *name;
	unsigned char *p;
	size_t pages;
};

static void fill(struct region *r, size_t from, int tag)
{
	for (size_t i = from; i < r->pages; i++)
		memset(r->p + i * PAGE, (int)((i * 13 + tag) & 0xff), PAGE);
}

static uint64_t check(struct region *r, const char *when)
{
	/* each page is uniform; its byte was set by the last fill over it */
	for (size_t i = 0; i < r->pages; i++)
		for (size_t j = 1; j < PAGE; j++)
			if (r->p[i * PAGE + j] != r->p[i * PAGE])
				t_fail("%s: region %s page %zu not uniform", when, r->name, i);
	return t_hash(T_HASH_INIT, r->p, r->pages * PAGE);
}

static void *remap(struct region *r, size_t pages, int flags, void *to)
{
	void *n = mremap(r->p, r->pages * PAGE, pages * PAGE, flags, to);

	T_CHECK(n != MAP_FAILED, "mremap %s %zu -> %zu pages: %s", r->name, r->pages, pages,
		strerror(errno));
	r->p = n;
	r->pages = pages;
	return n;
}

int main(int argc, char **argv)
{
	struct region grow = { .name = "grow" }, shrink = { .name = "shrink" },
		      inplace = { .name = "inplace" }, moved = { .name = "moved" };
	struct region *all[] = { &grow, &shrink, &inplace, &moved };
	unsigned char *resv;
	size_t resv_pages = 1024;
	uint64_t h[4];
	char when[64];

	t_init(argc, argv);
	grow.p = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	grow.pages = 64;
	fill(&grow, 0, 1);
	remap(&grow, 256, MREMAP_MAYMOVE, NULL);
	fill(&grow, 64, 2);

	shrink.p = mmap(NULL, 256 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shrink.pages = 256;
	fill(&shrink, 0, 3);
	remap(&shrink, 96, 0, NULL);

	/* 512 pages mapped, upper 384 unmapped, then grown in place to 256 */
	inplace.p = mmap(NULL, 512 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(inplace.p != MAP_FAILED, "mmap");
	munmap(inplace.p + 128 * PAGE, 384 * PAGE);
	inplace.pages = 128;
	fill(&inplace, 0, 4);
	remap(&inplace, 256, 0, NULL);
	fill(&inplace, 128, 5);

	resv = mmap(NULL, resv_pages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	T_CHECK(resv != MAP_FAILED, "reserve");
	moved.p = mmap(NULL, 32 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	moved.pages = 32;
	fill(&moved, 0, 6);
	remap(&moved, 32, MREMAP_MAYMOVE | MREMAP_FIXED, resv + 100 * PAGE);
	T_CHECK(grow.p != MAP_FAILED && shrink.p != MAP_FAILED && moved.p != MAP_FAILED, "mmap");
	printf("regions grown, shrunk, grown in place and moved\n");

	for (int k = 1; k <= 3; k++) {
		for (int i = 0; i < 4; i++)
			h[i] = check(all[i], "before the checkpoint");
		t_ready(k);
		snprintf(when, sizeof(when), "after READY %d", k);
		for (int i = 0; i < 4; i++)
			T_CHECK(check(all[i], when) == h[i], "%s: region %s changed", when, all[i]->name);
		T_CHECK(moved.p == resv + (100 + 100 * (k - 1)) * PAGE, "moved region not at its address");
		printf("%s: %zu+%zu+%zu+%zu pages intact\n", when, grow.pages, shrink.pages,
		       inplace.pages, moved.pages);

		remap(&grow, grow.pages + 64, MREMAP_MAYMOVE, NULL);
		fill(&grow, grow.pages - 64, 10 + k);
		remap(&shrink, shrink.pages - 16, 0, NULL);
		remap(&inplace, inplace.pages - 32, 0, NULL);	/* shrink, then grow back */
		remap(&inplace, inplace.pages + 32, MREMAP_MAYMOVE, NULL);
		fill(&inplace, inplace.pages - 32, 20 + k);
		remap(&moved, moved.pages, MREMAP_MAYMOVE | MREMAP_FIXED, resv + (100 + 100 * k) * PAGE);
		fill(&moved, 0, 30 + k);
		printf("%s: resized and moved again\n", when);
	}
	for (int i = 0; i < 4; i++)
		printf("region %s: %zu pages, hash %016llx\n", all[i]->name, all[i]->pages,
		       (unsigned long long)check(all[i], "at the end"));
	t_pass();
}
