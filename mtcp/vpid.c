/* The virtual pid table; see vpid.h. A flat array is enough: it holds the
 * processes of one restarted group, searched linearly (thousands at most). */
#define LOG_PREFIX "vpid: "
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"

#define VPID_MAX 65536

struct vpid_ent {
	pid_t vpid, real;
};

static pid_t self;
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

void vpid_set_self_from_kernel(void)
{
	self = vpid_kernel_pid();
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
}

void vpid_map_add(pid_t vpid, pid_t real)
{
	int i;

	if (!map || vpid <= 0 || real <= 0)
		return;
	for (i = 0; i < nmap; i++)
		if (map[i].vpid == vpid) {
			map[i].real = real;
			return;
		}
	if (nmap >= VPID_MAX) {
		log_warn("pid map full (%d processes): pid %d stays untranslated", VPID_MAX, vpid);
		return;
	}
	map[nmap].vpid = vpid;
	map[nmap].real = real;
	__atomic_store_n(&nmap, nmap + 1, __ATOMIC_RELEASE);
}

pid_t vpid_to_real(pid_t vpid)
{
	int i, n = __atomic_load_n(&nmap, __ATOMIC_ACQUIRE);

	if (self && vpid == self)
		return vpid_kernel_pid();
	for (i = 0; i < n; i++)
		if (map[i].vpid == vpid)
			return map[i].real;
	return vpid;
}

pid_t vpid_to_virt(pid_t real)
{
	int i, n = __atomic_load_n(&nmap, __ATOMIC_ACQUIRE);

	if (self && real == vpid_kernel_pid())
		return self;
	for (i = 0; i < n; i++)
		if (map[i].real == real)
			return map[i].vpid;
	return real;
}

size_t vpid_map_list(pid_t *vpids, size_t max)
{
	int i, n = __atomic_load_n(&nmap, __ATOMIC_ACQUIRE), have_self = 0;
	size_t k = 0;

	for (i = 0; i < n && k < max; i++) {
		vpids[k++] = map[i].vpid;
		have_self |= map[i].vpid == self;
	}
	if (!have_self && self && k < max)
		vpids[k++] = self;
	return k;
}
