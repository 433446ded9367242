/* Chain composition bookkeeping; see chain.h. */
#include <stdlib.h>
#include <string.h>
#include "restart/chain.h"

#define PAGE 4096ull

static int bit(const uint8_t *b, uint64_t i)
{
	return (b[i >> 3] >> (i & 7)) & 1;
}

static void set(uint8_t *b, uint64_t i)
{
	b[i >> 3] |= (uint8_t)(1u << (i & 7));
}

int chain_init(struct chain *c, const struct chain_area *areas, size_t nareas, uint64_t arena_len)
{
	size_t bytes;

	memset(c, 0, sizeof(*c));
	c->areas = areas;
	c->nareas = nareas;
	c->npages = arena_len / PAGE;
	bytes = (size_t)(c->npages / 8 + 1);
	c->have = calloc(1, bytes);
	c->want = calloc(1, bytes);
	c->next = calloc(1, bytes);
	if (!c->have || !c->want || !c->next) {
		chain_free(c);
		return -1;
	}
	return 0;
}

void chain_free(struct chain *c)
{
	free(c->have);
	free(c->want);
	free(c->next);
	memset(c, 0, sizeof(*c));
}

int64_t chain_page(const struct chain *c, uint64_t addr)
{
	size_t lo = 0, hi = c->nareas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct chain_area *a = &c->areas[mid];

		if (addr < a->start)
			hi = mid;
		else if (addr >= a->end)
			lo = mid + 1;
		else
			return (int64_t)((a->stage_off + (addr - a->start)) / PAGE);
	}
	return -1;
}

int chain_kept(struct chain *c, uint64_t addr, uint64_t npages)
{
	uint64_t i;

	for (i = 0; i < npages; i++) {
		int64_t p = chain_page(c, addr + i * PAGE);

		if (p < 0)
			continue;
		/* Only what every newer image kept matters from this one. */
		if (c->level > 0 && !bit(c->want, (uint64_t)p))
			continue;
		if (c->level == 0 && bit(c->have, (uint64_t)p))
			return -1;
		set(c->next, (uint64_t)p);
	}
	return 0;
}

int chain_stored(struct chain *c, uint64_t addr)
{
	int64_t p = chain_page(c, addr);

	if (p < 0)
		return 0;
	if (bit(c->next, (uint64_t)p))
		return -1;
	if (c->level > 0 && (!bit(c->want, (uint64_t)p) || bit(c->have, (uint64_t)p)))
		return 0;
	set(c->have, (uint64_t)p);
	return 1;
}

uint64_t chain_next_level(struct chain *c)
{
	uint8_t *t = c->want;
	uint64_t i, n = 0;

	c->want = c->next;
	c->next = t;
	memset(c->next, 0, (size_t)(c->npages / 8 + 1));
	for (i = 0; i < c->npages; i++)
		n += (uint64_t)bit(c->want, i);
	c->level++;
	return n;
}

int chain_has(const struct chain *c, uint64_t page)
{
	return page < c->npages && bit(c->have, page);
}
