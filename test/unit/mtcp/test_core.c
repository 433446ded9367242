/* Unit tests of export-core (mtcp/core.c): the register mapping from THREAD
 * records to NT_PRSTATUS, and whole cores written from small images made
 * with the image writer and read back with libelf: program headers, the
 * memory of every kind of area (stored pages, zero pages, pages from an
 * unchanged mapped file, zeros with one warning for a changed one), the
 * notes in gdb's order with their contents, the file mode, and a damaged
 * image or an unwritable destination refused with one line and no file
 * left behind. The gdb test of a real process is
 * test/integration/export_core.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include "mtcp/core.h"
#include "mtcp/image.h"
#include "mtcp/log.h"

#define PS IMAGE_PAGE_SIZE

/* ---- log capture ---- */

static int log_mfd = -1;

/* The log lines written since the last call, NUL-terminated. */
static const char *log_take(void)
{
	static char buf[16384];
	ssize_t n = pread(log_mfd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	assert_int_equal(ftruncate(log_mfd, 0), 0);
	assert_int_equal(lseek(log_mfd, 0, SEEK_SET), 0);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void assert_lines(const char *log, int n, const char *want)
{
	if (count_lines(log) != n || (want && !strstr(log, want)))
		fail_msg("expected %d line(s) with \"%s\", got:\n%s", n, want ? want : "", log);
}

/* ---- register mapping ---- */

static void regs_from_interrupted_thread(void **state)
{
	struct image_thread t;
	struct user_regs_struct r;
	int i;

	(void)state;
	memset(&t, 0, sizeof(t));
	for (i = 0; i < IMAGE_NGREG; i++)
		t.gregs[i] = 0x1000 + (uint64_t)i;
	t.gregs[IMAGE_REG_CSGSFS] = 0x002b000000000033ull;
	t.fs_base = 0x7f0000001000ull;
	t.gs_base = 0x7f0000002000ull;
	t.ctx[7] = 0xdead;	/* ignored: the thread was interrupted */
	core_thread_regs(&t, &r);
	assert_int_equal(r.r8, 0x1000 + IMAGE_REG_R8);
	assert_int_equal(r.r9, 0x1000 + IMAGE_REG_R9);
	assert_int_equal(r.r10, 0x1000 + IMAGE_REG_R10);
	assert_int_equal(r.r11, 0x1000 + IMAGE_REG_R11);
	assert_int_equal(r.r12, 0x1000 + IMAGE_REG_R12);
	assert_int_equal(r.r13, 0x1000 + IMAGE_REG_R13);
	assert_int_equal(r.r14, 0x1000 + IMAGE_REG_R14);
	assert_int_equal(r.r15, 0x1000 + IMAGE_REG_R15);
	assert_int_equal(r.rdi, 0x1000 + IMAGE_REG_RDI);
	assert_int_equal(r.rsi, 0x1000 + IMAGE_REG_RSI);
	assert_int_equal(r.rbp, 0x1000 + IMAGE_REG_RBP);
	assert_int_equal(r.rbx, 0x1000 + IMAGE_REG_RBX);
	assert_int_equal(r.rdx, 0x1000 + IMAGE_REG_RDX);
	assert_int_equal(r.rax, 0x1000 + IMAGE_REG_RAX);
	assert_int_equal(r.rcx, 0x1000 + IMAGE_REG_RCX);
	assert_int_equal(r.rsp, 0x1000 + IMAGE_REG_RSP);
	assert_int_equal(r.rip, 0x1000 + IMAGE_REG_RIP);
	assert_int_equal(r.eflags, 0x1000 + IMAGE_REG_EFL);
	assert_int_equal(r.orig_rax, (unsigned long long)-1);
	assert_int_equal(r.cs, 0x33);
	assert_int_equal(r.ss, 0x2b);
	assert_int_equal(r.fs_base, 0x7f0000001000ull);
	assert_int_equal(r.gs_base, 0x7f0000002000ull);
	assert_int_equal(r.ds | r.es | r.fs | r.gs, 0);
}

/* Another cs/ss in csgsfs is kept; none gives the x86-64 user defaults. */
static void regs_segments(void **state)
{
	struct image_thread t;
	struct user_regs_struct r;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.gregs[IMAGE_REG_RIP] = 0x401000;
	core_thread_regs(&t, &r);
	assert_int_equal(r.cs, 0x33);
	assert_int_equal(r.ss, 0x2b);
	t.gregs[IMAGE_REG_CSGSFS] = 0x0053000000000023ull;
	core_thread_regs(&t, &r);
	assert_int_equal(r.cs, 0x23);
	assert_int_equal(r.ss, 0x53);
}

/* The checkpoint thread: no gregs, so its resume context. */
static void regs_from_resume_context(void **state)
{
	struct image_thread t;
	struct user_regs_struct r;
	int i;

	(void)state;
	memset(&t, 0, sizeof(t));
	for (i = 0; i < 8; i++)
		t.ctx[i] = 0x2000 + (uint64_t)i;	/* rbx rbp r12 r13 r14 r15 rsp rip */
	t.fs_base = 0x7f0000003000ull;
	core_thread_regs(&t, &r);
	assert_int_equal(r.rbx, 0x2000);
	assert_int_equal(r.rbp, 0x2001);
	assert_int_equal(r.r12, 0x2002);
	assert_int_equal(r.r13, 0x2003);
	assert_int_equal(r.r14, 0x2004);
	assert_int_equal(r.r15, 0x2005);
	assert_int_equal(r.rsp, 0x2006);
	assert_int_equal(r.rip, 0x2007);
	assert_int_equal(r.rax | r.rcx | r.rdx | r.rsi | r.rdi | r.r8 | r.r9 | r.r10 | r.r11, 0);
	assert_int_equal(r.eflags, 0x202);
	assert_int_equal(r.cs, 0x33);
	assert_int_equal(r.ss, 0x2b);
	assert_int_equal(r.fs_base, 0x7f0000003000ull);
}

/* ---- a test image ---- */

enum {
	A_LIB,		/* private file mapping: page 2 written, the rest from the file */
	A_HEAP,		/* anonymous: pages 1-2 and 6 stored */
	A_GUARD,	/* PROT_NONE, nothing stored: no file bytes */
	A_STALE,	/* private file mapping of a file modified since */
	A_VVAR,		/* vdso block: not in the core */
	A_STACK,	/* the arguments */
	A_VSYSCALL,	/* skipped */
	NAREAS
};

static const uint64_t area_start[NAREAS] = {
	0x400000, 0x600000, 0x700000, 0x800000, 0x7ff000000000ull, 0x7ffd00000000ull,
	0xffffffffff600000ull,
};
static const uint64_t area_pages[NAREAS] = { 4, 8, 16, 2, 2, 2, 1 };

struct t_img {
	char dir[64], image[128], lib[128], stale[128], out[128];
	struct image_area areas[NAREAS];
	const char *paths[NAREAS];
	uint8_t *mem[NAREAS];	/* every page of each area as the core must show it */
	uint8_t *lib_file;	/* the mapped file's bytes */
	size_t lib_len;
};

static void fill(uint8_t *p, size_t len, unsigned tag)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + tag * 7 + (i >> 12));
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void set_area(struct t_img *m, int i, uint32_t kind, uint32_t prot, const char *path)
{
	struct image_area *a = &m->areas[i];
	struct stat st;

	memset(a, 0, sizeof(*a));
	a->start = area_start[i];
	a->end = area_start[i] + area_pages[i] * PS;
	a->prot = prot;
	a->kind = kind;
	a->path_len = path ? (uint32_t)strlen(path) : 0;
	m->paths[i] = path ? path : "";
	if (kind == IMAGE_AREA_FILE_PRIVATE) {
		assert_int_equal(stat(path, &st), 0);
		a->dev = st.st_dev;
		a->ino = st.st_ino;
		a->file_size = (uint64_t)st.st_size;
		a->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		a->pgoff = PS;
	}
	m->mem[i] = calloc(area_pages[i], PS);
	assert_non_null(m->mem[i]);
}

/* Stored pages [first, first + n) of area i, from m->mem. */
static void t_pages(struct image_writer *w, struct t_img *m, int i, uint64_t first, uint64_t n)
{
	assert_int_equal(image_writer_pages(w, (uint32_t)i, first, m->mem[i] + first * PS, n), 0);
}

/* Writes the image (and the files it maps) into a new temporary directory.
 * Three threads: an ordinary one, the leader (second in the stream, first
 * in the core) and the checkpoint thread; two pending signals. */
static void t_make(struct t_img *m, int level)
{
	static const char args[] = "app\0--flag\0x";
	struct image_header h = { 0 };
	struct image_process p = { 0 };
	struct image_thread th[3];
	struct image_siginfo sig[2];
	struct image_writer *w;
	uint8_t *stale_file;
	int fd, i;

	memset(m, 0, sizeof(*m));
	snprintf(m->dir, sizeof(m->dir), "%s/cryo-core.XXXXXX",
		 getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(m->dir));
	snprintf(m->image, sizeof(m->image), "%s/img.cryo", m->dir);
	snprintf(m->lib, sizeof(m->lib), "%s/lib.so", m->dir);
	snprintf(m->stale, sizeof(m->stale), "%s/stale.so", m->dir);
	snprintf(m->out, sizeof(m->out), "%s/out.core", m->dir);

	/* The mapped file: 6 pages and a bit; the mapping shows pages 1-4. */
	m->lib_len = 6 * PS + 100;
	m->lib_file = malloc(m->lib_len);
	assert_non_null(m->lib_file);
	fill(m->lib_file, m->lib_len, 1);
	write_file(m->lib, m->lib_file, m->lib_len);
	stale_file = calloc(3, PS);
	assert_non_null(stale_file);
	fill(stale_file, 3 * PS, 9);
	write_file(m->stale, stale_file, 3 * PS);
	free(stale_file);

	set_area(m, A_LIB, IMAGE_AREA_FILE_PRIVATE, 5, m->lib);
	memcpy(m->mem[A_LIB], m->lib_file + PS, 4 * PS);
	fill(m->mem[A_LIB] + 2 * PS, PS, 2);	/* written: differs from the file */
	m->areas[A_LIB].npages = 1;
	set_area(m, A_HEAP, IMAGE_AREA_ANON, 3, "[heap]");
	fill(m->mem[A_HEAP] + PS, 2 * PS, 3);
	fill(m->mem[A_HEAP] + 6 * PS, PS, 4);
	m->areas[A_HEAP].npages = 3;
	set_area(m, A_GUARD, IMAGE_AREA_ANON, 0, NULL);
	set_area(m, A_VVAR, IMAGE_AREA_VDSO, 1, "[vvar]");
	set_area(m, A_STACK, IMAGE_AREA_STACK, 3, "[stack]");
	memcpy(m->mem[A_STACK] + PS + 16, args, sizeof(args));
	m->areas[A_STACK].npages = 2;
	set_area(m, A_STALE, IMAGE_AREA_FILE_PRIVATE, 1, m->stale);
	m->areas[A_STALE].mtime_ns += 1000;	/* the file changed since */
	set_area(m, A_VSYSCALL, IMAGE_AREA_SKIP, 4, "[vsyscall]");

	h.magic = IMAGE_MAGIC;
	h.version = IMAGE_VERSION;
	h.arch = IMAGE_ARCH_X86_64;
	h.page_size = IMAGE_PAGE_SIZE;
	h.nareas = NAREAS;
	h.nthreads = 3;
	h.generation = 1;
	snprintf(h.kernel, sizeof(h.kernel), "not-this-kernel");
	snprintf(h.program, sizeof(h.program), "app");
	p.pid = 10;
	p.ppid = 1;
	p.pgid = 10;
	p.sid = 5;
	p.nsiginfo = 2;
	p.arg_start = area_start[A_STACK] + PS + 16;
	p.arg_end = p.arg_start + sizeof(args) - 2;	/* "app\0--flag\0" */
	p.auxv[0] = AT_PAGESZ;
	p.auxv[1] = PS;
	p.auxv[2] = AT_ENTRY;
	p.auxv[3] = 0x401000;
	p.auxv[4] = AT_NULL;
	p.auxv_words = 6;

	memset(th, 0, sizeof(th));
	th[0].tid = 11;
	th[0].gregs[IMAGE_REG_RIP] = 0x401111;
	th[0].gregs[IMAGE_REG_RSP] = 0x7ffd00000800ull;
	th[0].app_sigmask = 0x4;
	th[0].fxsave[24] = 0x80;	/* mxcsr 0x1f80 */
	th[0].fxsave[25] = 0x1f;
	th[1] = th[0];
	th[1].tid = 10;
	th[1].flags = IMAGE_THREAD_MAIN;
	th[1].gregs[IMAGE_REG_RIP] = 0x401010;
	th[2].tid = 12;
	th[2].flags = IMAGE_THREAD_CKPT;
	th[2].ctx[6] = 0x7ffd00000900ull;
	th[2].ctx[7] = 0x401212;
	memset(sig, 0, sizeof(sig));
	sig[0].tid = 11;
	sig[0].signo = 10;
	sig[1].signo = 15;

	fd = open(m->image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	w = image_writer_new(level);
	assert_non_null(w);
	image_writer_begin(w, fd);
	assert_int_equal(image_writer_record(w, IMAGE_REC_HEADER, &h, sizeof(h), NULL, 0), 0);
	assert_int_equal(image_writer_record(w, IMAGE_REC_PROCESS, &p, sizeof(p), NULL, 0), 0);
	for (i = 0; i < NAREAS; i++)
		assert_int_equal(image_writer_record(w, IMAGE_REC_AREA, &m->areas[i],
						     sizeof(m->areas[i]), m->paths[i],
						     m->areas[i].path_len), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(image_writer_record(w, IMAGE_REC_THREAD, &th[i], sizeof(th[i]),
						     NULL, 0), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(image_writer_record(w, IMAGE_REC_SIGINFO, &sig[i], sizeof(sig[i]),
						     NULL, 0), 0);
	t_pages(w, m, A_LIB, 2, 1);
	t_pages(w, m, A_HEAP, 1, 2);
	t_pages(w, m, A_HEAP, 6, 1);
	t_pages(w, m, A_STACK, 0, 2);
	assert_int_equal(image_writer_finish(w), 0);
	image_writer_free(w);
	close(fd);
}

static void t_free(struct t_img *m)
{
	char cmd[256];
	int i;

	for (i = 0; i < NAREAS; i++)
		free(m->mem[i]);
	free(m->lib_file);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", m->dir);
	assert_int_equal(system(cmd), 0);
}

/* Files in the test directory: the image, the two mapped files, and the
 * core if want_core. Nothing else (no temporary core left behind). */
static void assert_dir(const struct t_img *m, bool want_core)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(m->dir);

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	assert_int_equal(n, want_core ? 4 : 3);
	assert_int_equal(access(m->out, F_OK) == 0, want_core);
}

/* ---- reading the core back ---- */

struct t_note {
	uint32_t type;
	char name[8];
	const uint8_t *desc;
	size_t len;
};

struct t_core {
	int fd;
	Elf *e;
	size_t phnum;
	GElf_Phdr ph[16];
	struct t_note notes[16];
	size_t nnotes;
};

static void core_open(const char *path, struct t_core *c)
{
	GElf_Ehdr eh;
	Elf_Data *d;
	size_t i, off, name_off, desc_off;
	GElf_Nhdr nh;

	memset(c, 0, sizeof(*c));
	assert_int_not_equal(elf_version(EV_CURRENT), EV_NONE);
	c->fd = open(path, O_RDONLY);
	assert_true(c->fd >= 0);
	c->e = elf_begin(c->fd, ELF_C_READ, NULL);
	assert_non_null(c->e);
	assert_non_null(gelf_getehdr(c->e, &eh));
	assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS64);
	assert_int_equal(eh.e_ident[EI_DATA], ELFDATA2LSB);
	assert_int_equal(eh.e_type, ET_CORE);
	assert_int_equal(eh.e_machine, EM_X86_64);
	assert_int_equal(eh.e_shnum, 0);
	assert_int_equal(elf_getphdrnum(c->e, &c->phnum), 0);
	assert_true(c->phnum <= 16);
	for (i = 0; i < c->phnum; i++)
		assert_non_null(gelf_getphdr(c->e, (int)i, &c->ph[i]));
	assert_int_equal(c->ph[0].p_type, PT_NOTE);
	d = elf_getdata_rawchunk(c->e, (int64_t)c->ph[0].p_offset, c->ph[0].p_filesz, ELF_T_NHDR);
	assert_non_null(d);
	for (off = 0; (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0;) {
		struct t_note *n = &c->notes[c->nnotes++];

		assert_true(c->nnotes <= 16);
		n->type = nh.n_type;
		snprintf(n->name, sizeof(n->name), "%s", (const char *)d->d_buf + name_off);
		n->desc = (const uint8_t *)d->d_buf + desc_off;
		n->len = nh.n_descsz;
	}
}

static void core_close(struct t_core *c)
{
	elf_end(c->e);
	close(c->fd);
}

/* The PT_LOAD of the area at start, or NULL. */
static const GElf_Phdr *load_at(const struct t_core *c, uint64_t start)
{
	size_t i;

	for (i = 1; i < c->phnum; i++)
		if (c->ph[i].p_type == PT_LOAD && c->ph[i].p_vaddr == start)
			return &c->ph[i];
	return NULL;
}

static void assert_memory(const struct t_core *c, const struct t_img *m, int i)
{
	const GElf_Phdr *ph = load_at(c, area_start[i]);
	size_t len = area_pages[i] * PS;
	uint8_t *buf = malloc(len);

	assert_non_null(ph);
	assert_non_null(buf);
	assert_int_equal(ph->p_memsz, len);
	assert_int_equal(ph->p_filesz, len);
	assert_int_equal(ph->p_offset % PS, 0);
	assert_int_equal(pread(c->fd, buf, len, (off_t)ph->p_offset), (ssize_t)len);
	if (memcmp(buf, m->mem[i], len)) {
		size_t k = 0;

		while (buf[k] == m->mem[i][k])
			k++;
		fail_msg("area %d differs at byte %zu (page %zu)", i, k, k / PS);
	}
	free(buf);
}

/* Note descriptors are only 4-byte aligned, as in the kernel's cores:
 * copy them out before looking at their fields. */
static struct elf_prstatus prstatus(const struct t_note *n)
{
	struct elf_prstatus st;

	assert_int_equal(n->type, NT_PRSTATUS);
	assert_string_equal(n->name, "CORE");
	assert_int_equal(n->len, sizeof(st));
	memcpy(&st, n->desc, sizeof(st));
	return st;
}

static void export_and_check(int level)
{
	struct t_img m;
	struct t_core c;
	struct core_result res;
	struct elf_prstatus st;
	struct elf_prpsinfo ps;
	uint64_t fl[8], auxv[6];
	const char *names;
	struct stat sb;
	const char *log;

	t_make(&m, level);
	log_take();
	assert_int_equal(core_export(m.image, m.out, NULL, &res), 0);
	log = log_take();
	assert_lines(log, 1, "stale.so was modified since the checkpoint");
	assert_string_equal(res.path, m.out);
	assert_int_equal(res.nthreads, 3);
	assert_int_equal(res.nloads, 5);
	assert_int_equal(res.nstale, 1);
	assert_int_equal(stat(m.out, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal((uint64_t)sb.st_size, res.size);
	assert_dir(&m, true);

	core_open(m.out, &c);
	/* Program headers: the notes, then the areas in order, without the
	 * vdso block and [vsyscall]. */
	assert_int_equal(c.phnum, 6);
	assert_int_equal(c.ph[1].p_vaddr, area_start[A_LIB]);
	assert_int_equal(c.ph[1].p_flags, PF_R | PF_X);
	assert_int_equal(c.ph[2].p_vaddr, area_start[A_HEAP]);
	assert_int_equal(c.ph[2].p_flags, PF_R | PF_W);
	assert_int_equal(c.ph[3].p_vaddr, area_start[A_GUARD]);
	assert_int_equal(c.ph[3].p_flags, 0);
	assert_int_equal(c.ph[3].p_filesz, 0);	/* nothing to read in a guard area */
	assert_int_equal(c.ph[3].p_memsz, 16 * PS);
	assert_int_equal(c.ph[4].p_vaddr, area_start[A_STALE]);
	assert_int_equal(c.ph[4].p_flags, PF_R);
	assert_int_equal(c.ph[5].p_vaddr, area_start[A_STACK]);
	assert_null(load_at(&c, area_start[A_VVAR]));
	assert_null(load_at(&c, area_start[A_VSYSCALL]));
	/* Memory: stored pages, file pages around the written one, zeros. */
	assert_memory(&c, &m, A_LIB);
	assert_memory(&c, &m, A_HEAP);
	assert_memory(&c, &m, A_STACK);
	assert_memory(&c, &m, A_STALE);	/* zeros: the file changed */

	/* Notes: the leader first with the process notes after its NT_PRSTATUS;
	 * the checkpoint thread has no NT_PRFPREG (nothing saved). */
	assert_int_equal(c.nnotes, 8);
	st = prstatus(&c.notes[0]);
	assert_int_equal(st.pr_pid, 10);
	assert_int_equal(st.pr_ppid, 1);
	assert_int_equal(st.pr_pgrp, 10);
	assert_int_equal(st.pr_sid, 5);
	assert_int_equal(st.pr_reg[16], 0x401010);		/* rip */
	assert_int_equal(st.pr_sigpend, 1ul << 14);		/* SIGTERM to the process */
	assert_int_equal(st.pr_sighold, 0x4);
	assert_int_equal(st.pr_fpvalid, 1);
	assert_int_equal(c.notes[1].type, NT_PRPSINFO);
	assert_int_equal(c.notes[1].len, sizeof(struct elf_prpsinfo));
	memcpy(&ps, c.notes[1].desc, sizeof(ps));
	assert_int_equal(ps.pr_pid, 10);
	assert_string_equal(ps.pr_fname, "app");
	assert_string_equal(ps.pr_psargs, "app --flag");
	assert_int_equal(c.notes[2].type, NT_AUXV);
	assert_int_equal(c.notes[2].len, 6 * 8);
	memcpy(auxv, c.notes[2].desc, sizeof(auxv));
	assert_int_equal(auxv[0], AT_PAGESZ);
	assert_int_equal(auxv[3], 0x401000);
	assert_int_equal(auxv[4], AT_NULL);
	assert_int_equal(c.notes[3].type, NT_FILE);
	memcpy(fl, c.notes[3].desc, sizeof(fl));
	assert_int_equal(fl[0], 2);
	assert_int_equal(fl[1], PS);
	assert_int_equal(fl[2], area_start[A_LIB]);
	assert_int_equal(fl[3], area_start[A_LIB] + 4 * PS);
	assert_int_equal(fl[4], 1);	/* pgoff in pages */
	assert_int_equal(fl[5], area_start[A_STALE]);
	names = (const char *)c.notes[3].desc + sizeof(fl);
	assert_string_equal(names, m.lib);
	assert_string_equal(names + strlen(m.lib) + 1, m.stale);
	assert_int_equal(c.notes[3].len, 8 * 8 + strlen(m.lib) + strlen(m.stale) + 2);
	assert_int_equal(c.notes[4].type, NT_PRFPREG);
	assert_int_equal(c.notes[4].len, 512);
	assert_int_equal(c.notes[4].desc[25], 0x1f);
	st = prstatus(&c.notes[5]);
	assert_int_equal(st.pr_pid, 11);
	assert_int_equal(st.pr_reg[16], 0x401111);
	assert_int_equal(st.pr_sigpend, (1ul << 14) | (1ul << 9));	/* and SIGUSR1 */
	assert_int_equal(c.notes[6].type, NT_PRFPREG);
	st = prstatus(&c.notes[7]);
	assert_int_equal(st.pr_pid, 12);
	assert_int_equal(st.pr_reg[16], 0x401212);		/* rip from ctx */
	assert_int_equal(st.pr_reg[19], 0x7ffd00000900ull);	/* rsp */
	assert_int_equal(st.pr_fpvalid, 0);
	core_close(&c);
	t_free(&m);
}

static void export_raw_image(void **state)
{
	(void)state;
	export_and_check(0);
}

static void export_zstd_image(void **state)
{
	(void)state;
	export_and_check(1);
}

/* A flipped byte: the reader's one line, exit without a core. */
static void damaged_image_refused(void **state)
{
	struct t_img m;
	struct stat sb;
	uint8_t b;
	int fd;

	(void)state;
	t_make(&m, 0);
	assert_int_equal(stat(m.image, &sb), 0);
	fd = open(m.image, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, sb.st_size / 2), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, sb.st_size / 2), 1);
	log_take();
	assert_int_equal(core_export(m.image, m.out, NULL, NULL), -1);
	assert_lines(log_take(), 1, "is corrupt");
	assert_dir(&m, false);

	/* Repaired, then truncated: the same. */
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, sb.st_size / 2), 1);
	close(fd);
	assert_int_equal(core_export(m.image, m.out, NULL, NULL), 0);
	assert_int_equal(unlink(m.out), 0);
	log_take();	/* the stale file's warning */
	assert_int_equal(truncate(m.image, sb.st_size - 70), 0);
	assert_int_equal(core_export(m.image, m.out, NULL, NULL), -1);
	assert_lines(log_take(), 1, "is truncated");
	assert_dir(&m, false);
	t_free(&m);
}

static void bad_destination_refused(void **state)
{
	struct t_img m;
	char out[200];

	(void)state;
	t_make(&m, 0);
	snprintf(out, sizeof(out), "%s/no/such/dir/core", m.dir);
	log_take();
	assert_int_equal(core_export(m.image, out, NULL, NULL), -1);
	assert_lines(log_take(), 1, "no/such/dir/core");
	assert_int_equal(core_export("/no/such/image.cryo", m.out, NULL, NULL), -1);
	assert_lines(log_take(), 1, "open image /no/such/image.cryo");
	assert_int_equal(core_export("/dev/null", m.out, NULL, NULL), -1);
	assert_lines(log_take(), 1, "not a regular file");
	assert_dir(&m, false);
	t_free(&m);
}

static int setup(void **state)
{
	(void)state;
	log_mfd = memfd_create("log", MFD_CLOEXEC);
	if (log_mfd < 0)
		return -1;
	log_setup(LOG_WARN, log_mfd);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(regs_from_interrupted_thread),
		cmocka_unit_test(regs_segments),
		cmocka_unit_test(regs_from_resume_context),
		cmocka_unit_test(export_raw_image),
		cmocka_unit_test(export_zstd_image),
		cmocka_unit_test(damaged_image_refused),
		cmocka_unit_test(bad_destination_refused),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
