/* F_SETOWN election (see owner.h). */
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "plugin/owner.h"

void owner_get(int fd, struct f_owner_ex *o)
{
	if (sys_failed(sys_fcntl(fd, F_GETOWN_EX, (long)o))) {
		o->type = F_OWNER_PID;
		o->pid = 0;
	}
	if (o->type != F_OWNER_TID && o->pid)
		o->pid = vpid_to_virt(o->pid);
}

void owner_mark(int fd)
{
	struct f_owner_ex me = { F_OWNER_PID, vpid_kernel_pid() };

	sys_fcntl(fd, F_SETOWN_EX, (long)&me);
}

int owner_read(int fd, int32_t *owner)
{
	struct f_owner_ex o;

	if (sys_failed(sys_fcntl(fd, F_GETOWN_EX, (long)&o)))
		o.pid = 0;
	*owner = vpid_to_virt(o.pid);
	return o.pid == vpid_kernel_pid();
}

void owner_set(int fd, const struct f_owner_ex *o, int restarted)
{
	struct f_owner_ex v = *o;

	if (v.type == F_OWNER_TID && restarted) {
		v.type = F_OWNER_PID;	/* the thread's kernel tid is another now */
		v.pid = 0;
	} else if (v.type != F_OWNER_TID && v.pid) {
		v.pid = vpid_to_real(v.pid);
	}
	sys_fcntl(fd, F_SETOWN_EX, (long)&v);
}
