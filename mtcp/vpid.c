/* The virtual pid table; see vpid.h. A flat array is enough: it holds the
 * processes (and their groups and sessions) of one restarted computation,
 * searched linearly (thousands at most). Empty until a restart, so before
 * one every lookup is a comparison with this process's own pid and a loop
 * that does not run. Entries are only appended (or updated in place), with
 * a release store of the count, so lookups need no lock. */
#define LOG_PREFIX "vpid: "
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"

#define VPID_MAX 65536

struct vpid_ent {
	pid_t vpid, real;
	int group;		/* a process group or session id, not a process */
};

static pid_t self, owner;
static volatile unsigned epoch;
static struct vpid_ent *map;	/* ckpt_mem */
static volatile int nmap;

pid_t vpid_self(void)
{
	return self;
}

pid_t vpid_kernel_pid(void)
{
	return (pid_t)sys_getpid();
}

pid_t vpid_owner(void)
{
	return owner;
}

void vpid_note_kernel_pid(void)
{
	owner = vpid_kernel_pid();
}

void vpid_set_self_from_kernel(void)
{
	self = owner = vpid_kernel_pid();
}

void vpid_set_self(pid_t vpid)
{
	owner = vpid_kernel_pid();
	self = vpid > 0 ? vpid : owner;
}

int vpid_map_reserve(void)
{
	if (!map)
		map = ckpt_mem(VPID_MAX * sizeof(*map));
	return map ? 0 : -1;
}

void vpid_map_reset(void)
{
	nmap = 0;
	__atomic_add_fetch(&epoch, 1, __ATOMIC_RELEASE);
}

unsigned vpid_epoch(void)
{
	return __atomic_load_n(&epoch, __ATOMIC_ACQUIRE);
}

static void add(pid_t vpid, pid_t real, int group)
{
	int i;

	if (!map || vpid <= 0 || real <= 0)
		return;
	for (i = 0; i < nmap; i++)
		if (map[i].vpid == vpid && map[i].group == group) {
			map[i].real = real;
			return;
		}
	if (nmap >= VPID_MAX) {
		log_warn("pid map full (%d entries): id %d stays untranslated", VPID_MAX, vpid);
		return;
	}
	map[nmap].vpid = vpid;
	map[nmap].real = real;
	map[nmap].group = group;
	__atomic_store_n(&nmap, nmap + 1, __ATOMIC_RELEASE);
}

void vpid_map_add(pid_t vpid, pid_t real)
{
	add(vpid, real, 0);
}

void vpid_map_add_group(pid_t vid, pid_t real)
{
	add(vid, real, 1);
}

size_t vpid_map_count(void)
{
	return (size_t)__atomic_load_n(&nmap, __ATOMIC_ACQUIRE);
}

int vpid_map_get(size_t i, pid_t *vpid, pid_t *real, int *group)
{
	if (i >= vpid_map_count())
		return -1;
	*vpid = map[i].vpid;
	*real = map[i].real;
	*group = map[i].group;
	return 0;
}

/* The entry of kind group whose field (virtual or kernel id) is id. */
static const struct vpid_ent *find(pid_t id, int by_real, int group)
{
	int i, n = __atomic_load_n(&nmap, __ATOMIC_ACQUIRE);

	for (i = 0; i < n; i++)
		if (map[i].group == group && (by_real ? map[i].real : map[i].vpid) == id)
			return &map[i];
	return NULL;
}

pid_t vpid_to_real(pid_t vpid)
{
	const struct vpid_ent *e;

	if (self && vpid == self)
		return owner;
	e = find(vpid, 0, 0);
	return e ? e->real : vpid;
}

pid_t vpid_to_virt(pid_t real)
{
	const struct vpid_ent *e;

	if (self && real == owner)
		return self;
	e = find(real, 1, 0);
	return e ? e->vpid : real;
}

pid_t vpid_group_to_real(pid_t vid)
{
	const struct vpid_ent *e = find(vid, 0, 1);

	return e ? e->real : vpid_to_real(vid);
}

pid_t vpid_group_to_virt(pid_t real)
{
	const struct vpid_ent *e = find(real, 1, 1);

	return e ? e->vpid : vpid_to_virt(real);
}

int vpid_conflicts(pid_t k)
{
	int i, n = __atomic_load_n(&nmap, __ATOMIC_ACQUIRE);

	if (k <= 0)
		return 0;
	if (self && k == self && self != owner)
		return 1;
	for (i = 0; i < n; i++)
		if (map[i].vpid == k || map[i].real == k)
			return 1;
	return 0;
}

size_t vpid_map_list(pid_t *vpids, size_t max)
{
	int i, n = __atomic_load_n(&nmap, __ATOMIC_ACQUIRE), have_self = 0;
	size_t k = 0;

	for (i = 0; i < n && k < max; i++) {
		if (map[i].group)
			continue;
		vpids[k++] = map[i].vpid;
		have_self |= map[i].vpid == self;
	}
	if (!have_self && self && k < max)
		vpids[k++] = self;
	return k;
}
