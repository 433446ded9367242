/* Address-space planning; see plan.h. Built twice: hosted into cryo_restart
 * and freestanding into the restorer. */
#include "restart/plan.h"

void plan_sort(struct plan_range *r, size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++) {
		struct plan_range x = r[i];

		for (j = i; j > 0 && r[j - 1].start > x.start; j--)
			r[j] = r[j - 1];
		r[j] = x;
	}
}

size_t plan_merge(struct plan_range *r, size_t n)
{
	size_t i, out = 0;

	for (i = 0; i < n; i++) {
		if (r[i].end <= r[i].start)
			continue;
		if (out && r[i].start <= r[out - 1].end) {
			if (r[i].end > r[out - 1].end)
				r[out - 1].end = r[i].end;
			continue;
		}
		r[out++] = r[i];
	}
	return out;
}

size_t plan_gaps(const struct plan_range *keep, size_t n, uint64_t lo, uint64_t hi,
		 struct plan_range *gaps, size_t max)
{
	uint64_t cur = lo;
	size_t i, count = 0;

	for (i = 0; i <= n; i++) {
		uint64_t next = i < n ? keep[i].start : hi;

		if (next > hi)
			next = hi;
		if (next > cur) {
			if (count < max) {
				gaps[count].start = cur;
				gaps[count].end = next;
			}
			count++;
		}
		if (i < n && keep[i].end > cur)
			cur = keep[i].end;
		if (cur >= hi)
			break;
	}
	return count;
}

uint64_t plan_find_hole(const struct plan_range *busy, size_t n, uint64_t len, uint64_t guard,
			uint64_t lo, uint64_t hi)
{
	uint64_t need = len + 2 * guard;
	size_t i = n;

	/* Walk the gaps from the top down: [busy[i-1].end, top). */
	for (;;) {
		uint64_t top = i < n ? busy[i].start : hi;
		uint64_t bottom = i > 0 ? busy[i - 1].end : lo;

		if (top > hi)
			top = hi;
		if (bottom < lo)
			bottom = lo;
		if (top > bottom && top - bottom >= need)
			return top - guard - len;
		if (i == 0)
			return 0;
		i--;
	}
}

int plan_overlaps(const struct plan_range *r, size_t n, uint64_t start, uint64_t end)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (start < r[i].end && r[i].start < end)
			return 1;
	return 0;
}
