/* export-core: turns a checkpoint image into an ELF core file that gdb
 * reads like one the kernel dumped. Called by `cryo_image export-core`
 * (mtcp/cryo_image.c); hosted code, built on the image reader of
 * mtcp/image_read.c and on libelf. doc/export-core.md is the user's view.
 *
 * The core, in file order:
 *   ELF header and program headers   written by libelf (ELF_F_LAYOUT: the
 *                                    offsets below are ours)
 *   PT_NOTE   per thread NT_PRSTATUS and NT_PRFPREG, the leader's first;
 *             after the first NT_PRSTATUS the process notes NT_PRPSINFO,
 *             NT_AUXV and NT_FILE (the kernel's order, which gdb expects:
 *             a register note belongs to the NT_PRSTATUS before it)
 *   PT_LOAD   one per AREA but [vsyscall] and the vdso block (which was
 *             never saved; the [vdso] is put in all the same, copied from
 *             this process, when the image comes from the kernel release
 *             running now), page aligned, p_filesz = p_memsz except for
 *             inaccessible areas with no saved page (p_filesz 0, as the
 *             kernel does)
 *
 * Memory never sits whole in RAM: a first pass over the image collects the
 * header, process, areas, threads, signals and which pages each area has
 * stored; the layout follows from that. The core is then sized with
 * ftruncate(), so every page nobody writes is a hole and reads as zero, and
 * a second pass decodes one PAGES chunk at a time straight to its place.
 * The pages a file mapping did not store are copied from the file, if it
 * is unchanged; the program's arguments for NT_PRPSINFO are read back from
 * the core's own memory; the notes are written last.
 *
 * The checkpoint thread (IMAGE_THREAD_CKPT) was not interrupted by a
 * signal, so it has no interrupted registers; it is included with its
 * resume context, which makes it show in gdb inside libcryo's
 * checkpoint_write(), with a normal backtrace. */
#define LOG_PREFIX ""
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "mtcp/core.h"
#include "mtcp/image.h"
#include "mtcp/log.h"
#include "mtcp/maps_parse.h"

/* The note payloads are the kernel's x86-64 layouts, which gdb parses. */
_Static_assert(sizeof(struct elf_prstatus) == 336, "NT_PRSTATUS is 336 bytes on x86-64");
_Static_assert(sizeof(struct elf_prpsinfo) == 136, "NT_PRPSINFO is 136 bytes on x86-64");
_Static_assert(sizeof(struct user_regs_struct) == sizeof(elf_gregset_t), "pr_reg layout");
_Static_assert(sizeof(struct user_fpregs_struct) == 512, "NT_PRFPREG is the FXSAVE area");
_Static_assert(sizeof(((struct image_thread *)0)->fxsave) == 512, "image FXSAVE area");

#define PS		IMAGE_PAGE_SIZE
#define COPY_CHUNK	(1u << 20)	/* file pages copied per read */
#define PAD4(n)		(((n) + 3) & ~(size_t)3)

struct c_area {
	struct image_area a;
	char *path;		/* NUL-terminated */
	struct image_run *saved; /* pages stored in the image: merged runs, in order */
	size_t nsaved, cap;
	bool dumped;		/* has a PT_LOAD */
	bool own_vdso;		/* the [vdso], copied from this process */
	uint64_t off, filesz;	/* its bytes in the core */
};

struct c_sig {
	uint32_t tid, signo;
};

struct core {
	const char *image, *out;
	const uint8_t *key;	/* of a sealed image, or NULL */
	struct image_header hdr;
	struct image_process proc;
	struct c_area *areas;
	size_t nareas, areas_cap;
	struct image_thread *threads;
	size_t nthreads, threads_cap;
	struct c_sig *sigs;
	size_t nsigs, sigs_cap;
	size_t nloads;
	uint8_t *notes;		/* the PT_NOTE segment, built after the first pass */
	size_t notes_len, notes_cap;
	size_t psinfo_off;	/* of the elf_prpsinfo in notes */
	uint64_t notes_off;	/* of the notes in the core */
	uint64_t size;		/* of the core */
	int fd;			/* the core being written */
	uint8_t *buf;		/* COPY_CHUNK bytes for file pages */
	const char *warned;	/* path of the file warned about last */
	uint32_t nstale;
	uint64_t vdso_start, vdso_end;	/* this process's [vdso], if found */
};

/* Room for one more element in *arr, which holds n of *cap; -1 after logging. */
static int reserve(void **arr, size_t n, size_t *cap, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, ncap * size);
	if (!p) {
		log_err("out of memory (%zu bytes)", ncap * size);
		return -1;
	}
	*arr = p;
	*cap = ncap;
	return 0;
}

static void core_free(struct core *c)
{
	size_t i;

	for (i = 0; i < c->nareas; i++) {
		free(c->areas[i].path);
		free(c->areas[i].saved);
	}
	free(c->areas);
	free(c->threads);
	free(c->sigs);
	free(c->notes);
	free(c->buf);
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *name)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_perror("write %zu bytes at offset %llu of core %s", len,
				   (unsigned long long)off, name);
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Opens the image and makes a reader for it; -1 after logging. */
static int image_open(struct core *c, int *fd, struct image_reader **r)
{
	struct stat st;

	*r = NULL;
	*fd = open(c->image, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		log_perror("open image %s", c->image);
		return -1;
	}
	if (fstat(*fd, &st) < 0) {
		log_perror("fstat image %s", c->image);
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("%s is not a regular file: export-core reads the image twice", c->image);
		goto err;
	}
	*r = image_reader_new(*fd, c->image);
	if (*r && image_reader_set_key(*r, c->key) == 0)
		return 0;
	image_reader_free(*r);
	*r = NULL;
err:
	close(*fd);
	*fd = -1;
	return -1;
}

/* ---- first pass: the layout ---- */

static int add_area(struct core *c, const void *p)
{
	struct c_area *a;

	if (reserve((void **)&c->areas, c->nareas, &c->areas_cap, sizeof(*c->areas)) < 0)
		return -1;
	a = &c->areas[c->nareas];
	memset(a, 0, sizeof(*a));
	memcpy(&a->a, p, sizeof(a->a));
	a->path = strndup((const char *)p + sizeof(a->a), a->a.path_len);
	if (!a->path) {
		log_err("out of memory");
		return -1;
	}
	c->nareas++;
	return 0;
}

/* Records which pages of its area a PAGES payload (checked by the reader)
 * holds, merging runs that continue the last one. */
static int add_runs(struct core *c, const void *p)
{
	const struct image_run *runs = (const void *)((const char *)p + sizeof(struct image_pages));
	struct image_pages pg;
	struct c_area *a;
	uint32_t i;

	memcpy(&pg, p, sizeof(pg));
	a = &c->areas[pg.area];
	for (i = 0; i < pg.nruns; i++) {
		struct image_run run;

		memcpy(&run, &runs[i], sizeof(run));
		if (a->nsaved && a->saved[a->nsaved - 1].first + a->saved[a->nsaved - 1].count ==
					 run.first) {
			a->saved[a->nsaved - 1].count += run.count;
			continue;
		}
		if (reserve((void **)&a->saved, a->nsaved, &a->cap, sizeof(*a->saved)) < 0)
			return -1;
		a->saved[a->nsaved++] = run;
	}
	return 0;
}

static int read_layout(struct core *c)
{
	struct image_reader *r;
	const void *p;
	uint64_t len;
	uint32_t type;
	int fd, ret;

	if (image_open(c, &fd, &r) < 0)
		return -1;
	while ((ret = image_reader_next(r, &type, &p, &len)) > 0) {
		switch (type) {
		case IMAGE_REC_HEADER:
			memcpy(&c->hdr, p, sizeof(c->hdr));
			break;
		case IMAGE_REC_PROCESS:
			memcpy(&c->proc, p, sizeof(c->proc));
			break;
		case IMAGE_REC_AREA:
			ret = add_area(c, p);
			break;
		case IMAGE_REC_THREAD:
			ret = reserve((void **)&c->threads, c->nthreads, &c->threads_cap,
				      sizeof(*c->threads));
			if (!ret)
				memcpy(&c->threads[c->nthreads++], p, sizeof(*c->threads));
			break;
		case IMAGE_REC_SIGINFO:
			ret = reserve((void **)&c->sigs, c->nsigs, &c->sigs_cap, sizeof(*c->sigs));
			if (!ret)
				memcpy(&c->sigs[c->nsigs++], p, sizeof(*c->sigs));
			break;
		case IMAGE_REC_PAGES:
			ret = add_runs(c, p);
			break;
		}
		if (ret < 0)
			break;
	}
	image_reader_free(r);
	close(fd);
	return ret < 0 ? -1 : 0;
}

/* ---- notes ---- */

void core_thread_regs(const struct image_thread *t, struct user_regs_struct *r)
{
	const uint64_t *g = t->gregs;
	uint64_t csgsfs = g[IMAGE_REG_CSGSFS];

	memset(r, 0, sizeof(*r));
	if (!g[IMAGE_REG_RIP] && !g[IMAGE_REG_RSP]) {
		/* Not interrupted: where it resumes, right after the call that saved
		 * the context, with the callee-saved registers of that moment. */
		r->rbx = t->ctx[0];
		r->rbp = t->ctx[1];
		r->r12 = t->ctx[2];
		r->r13 = t->ctx[3];
		r->r14 = t->ctx[4];
		r->r15 = t->ctx[5];
		r->rsp = t->ctx[6];
		r->rip = t->ctx[7];
		r->eflags = 0x202;	/* IF and the always-one bit */
	} else {
		r->r8 = g[IMAGE_REG_R8];
		r->r9 = g[IMAGE_REG_R9];
		r->r10 = g[IMAGE_REG_R10];
		r->r11 = g[IMAGE_REG_R11];
		r->r12 = g[IMAGE_REG_R12];
		r->r13 = g[IMAGE_REG_R13];
		r->r14 = g[IMAGE_REG_R14];
		r->r15 = g[IMAGE_REG_R15];
		r->rdi = g[IMAGE_REG_RDI];
		r->rsi = g[IMAGE_REG_RSI];
		r->rbp = g[IMAGE_REG_RBP];
		r->rbx = g[IMAGE_REG_RBX];
		r->rdx = g[IMAGE_REG_RDX];
		r->rax = g[IMAGE_REG_RAX];
		r->rcx = g[IMAGE_REG_RCX];
		r->rsp = g[IMAGE_REG_RSP];
		r->rip = g[IMAGE_REG_RIP];
		r->eflags = g[IMAGE_REG_EFL];
	}
	/* The signal frame has no orig_rax; -1 says "not in a system call" (a
	 * restartable call was already rewound by the kernel). sigcontext packs
	 * cs, gs, fs and ss into one word; user fs and gs selectors are 0. */
	r->orig_rax = (unsigned long long)-1;
	r->cs = csgsfs & 0xffff ? csgsfs & 0xffff : 0x33;
	r->ss = csgsfs >> 48 ? csgsfs >> 48 : 0x2b;
	r->fs_base = t->fs_base;
	r->gs_base = t->gs_base;
}

/* Appends one note (4-byte aligned name and descriptor, as in the kernel's
 * cores); *desc_off, if given, gets the descriptor's offset in the notes. */
static int note_add(struct core *c, const char *name, uint32_t type, const void *desc,
		    size_t len, size_t *desc_off)
{
	size_t namesz = strlen(name) + 1;
	size_t need = sizeof(Elf64_Nhdr) + PAD4(namesz) + PAD4(len);
	Elf64_Nhdr nh = { .n_namesz = (Elf64_Word)namesz, .n_descsz = (Elf64_Word)len,
			  .n_type = type };
	uint8_t *p;

	if (c->notes_len + need > c->notes_cap) {
		size_t ncap = (c->notes_len + need) * 2;

		p = realloc(c->notes, ncap);
		if (!p) {
			log_err("out of memory (%zu bytes of notes)", ncap);
			return -1;
		}
		c->notes = p;
		c->notes_cap = ncap;
	}
	p = c->notes + c->notes_len;
	memset(p, 0, need);
	memcpy(p, &nh, sizeof(nh));
	memcpy(p + sizeof(nh), name, namesz);
	memcpy(p + sizeof(nh) + PAD4(namesz), desc, len);
	if (desc_off)
		*desc_off = c->notes_len + sizeof(nh) + PAD4(namesz);
	c->notes_len += need;
	return 0;
}

static bool fxsave_valid(const struct image_thread *t)
{
	size_t i;

	for (i = 0; i < sizeof(t->fxsave); i++)
		if (t->fxsave[i])
			return true;
	return false;	/* the checkpoint thread: nothing was saved */
}

static int note_prstatus(struct core *c, const struct image_thread *t)
{
	struct elf_prstatus st;
	struct user_regs_struct regs;
	bool interrupted = t->gregs[IMAGE_REG_RIP] || t->gregs[IMAGE_REG_RSP];
	size_t i;

	memset(&st, 0, sizeof(st));
	st.pr_pid = (pid_t)t->tid;
	st.pr_ppid = (pid_t)c->proc.ppid;
	st.pr_pgrp = (pid_t)c->proc.pgid;
	st.pr_sid = (pid_t)c->proc.sid;
	st.pr_sighold = interrupted ? t->app_sigmask : t->sigmask;
	for (i = 0; i < c->nsigs; i++)
		if ((!c->sigs[i].tid || c->sigs[i].tid == t->tid) && c->sigs[i].signo - 1 < 64)
			st.pr_sigpend |= 1ul << (c->sigs[i].signo - 1);
	core_thread_regs(t, &regs);
	memcpy(&st.pr_reg, &regs, sizeof(st.pr_reg));
	st.pr_fpvalid = fxsave_valid(t);
	return note_add(c, "CORE", NT_PRSTATUS, &st, sizeof(st), NULL);
}

/* pr_psargs is filled in once the memory is written (fill_psargs). */
static int note_prpsinfo(struct core *c)
{
	struct elf_prpsinfo ps;

	memset(&ps, 0, sizeof(ps));
	ps.pr_state = 1;	/* "S": it was stopped in the middle of whatever it did */
	ps.pr_sname = 'S';
	ps.pr_pid = (int)c->proc.pid;
	ps.pr_ppid = (int)c->proc.ppid;
	ps.pr_pgrp = (int)c->proc.pgid;
	ps.pr_sid = (int)c->proc.sid;
	memcpy(ps.pr_fname, c->hdr.program, sizeof(ps.pr_fname) - 1);
	return note_add(c, "CORE", NT_PRPSINFO, &ps, sizeof(ps), &c->psinfo_off);
}

static int note_auxv(struct core *c)
{
	uint64_t auxv[IMAGE_AUXV_MAX + 2];
	size_t n = 0, words = c->proc.auxv_words;

	if (words > IMAGE_AUXV_MAX)
		words = IMAGE_AUXV_MAX;
	while (n + 1 < words && c->proc.auxv[n] != AT_NULL) {
		auxv[n] = c->proc.auxv[n];
		auxv[n + 1] = c->proc.auxv[n + 1];
		n += 2;
	}
	auxv[n++] = AT_NULL;
	auxv[n++] = 0;
	return note_add(c, "CORE", NT_AUXV, auxv, n * sizeof(auxv[0]), NULL);
}

static bool is_file_area(const struct c_area *a)
{
	return (a->a.kind == IMAGE_AREA_FILE_PRIVATE || a->a.kind == IMAGE_AREA_FILE_SHARED) &&
	       a->path[0] == '/';
}

/* NT_FILE: count, page size, (start, end, offset in pages) per file mapping,
 * then the paths, each NUL-terminated. */
static int note_file(struct core *c)
{
	size_t i, n = 0, names = 0, len, pos;
	uint64_t *d;
	int ret;

	for (i = 0; i < c->nareas; i++)
		if (is_file_area(&c->areas[i])) {
			n++;
			names += strlen(c->areas[i].path) + 1;
		}
	len = (2 + 3 * n) * sizeof(uint64_t) + names;
	d = malloc(len);
	if (!d) {
		log_err("out of memory (%zu bytes for NT_FILE)", len);
		return -1;
	}
	d[0] = n;
	d[1] = PS;
	pos = (2 + 3 * n) * sizeof(uint64_t);
	for (i = 0, n = 0; i < c->nareas; i++) {
		const struct c_area *a = &c->areas[i];

		if (!is_file_area(a))
			continue;
		d[2 + 3 * n] = a->a.start;
		d[3 + 3 * n] = a->a.end;
		d[4 + 3 * n] = a->a.pgoff / PS;
		n++;
		memcpy((char *)d + pos, a->path, strlen(a->path) + 1);
		pos += strlen(a->path) + 1;
	}
	ret = note_add(c, "CORE", NT_FILE, d, len, NULL);
	free(d);
	return ret;
}

/* Every thread's notes, the leader's first and the process notes after its
 * NT_PRSTATUS. */
static int build_notes(struct core *c)
{
	size_t i, lead = 0, k;

	for (i = 0; i < c->nthreads; i++)
		if (c->threads[i].flags & IMAGE_THREAD_MAIN) {
			lead = i;
			break;
		}
	for (k = 0; k < c->nthreads; k++) {
		const struct image_thread *t = &c->threads[k ? (k <= lead ? k - 1 : k) : lead];

		if (note_prstatus(c, t) < 0)
			return -1;
		if (!k && (note_prpsinfo(c) < 0 || note_auxv(c) < 0 || note_file(c) < 0))
			return -1;
		if (fxsave_valid(t) &&
		    note_add(c, "CORE", NT_PRFPREG, t->fxsave, sizeof(t->fxsave), NULL) < 0)
			return -1;
	}
	if (!c->nthreads && (note_prpsinfo(c) < 0 || note_auxv(c) < 0 || note_file(c) < 0))
		return -1;
	return 0;
}

/* ---- layout and writing ---- */

/* Finds this process's [vdso] in /proc/self/maps, if the image comes from
 * the kernel release running now: its code is then the image's, which was
 * never saved. */
static void find_own_vdso(struct core *c)
{
	struct image_area a;
	struct utsname u;
	const char *path;
	char *line = NULL;
	size_t cap = 0;
	int shared;
	FILE *f;

	if (uname(&u) < 0 || strncmp(u.release, c->hdr.kernel, sizeof(c->hdr.kernel)))
		return;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (!maps_parse_line(line, &a, &path, &shared) && !strcmp(path, "[vdso]")) {
			c->vdso_start = a.start;
			c->vdso_end = a.end;
			break;
		}
	}
	free(line);
	fclose(f);
}

static int plan(struct core *c)
{
	uint64_t off;
	size_t i;

	find_own_vdso(c);
	for (i = 0; i < c->nareas; i++) {
		struct c_area *a = &c->areas[i];

		a->own_vdso = a->a.kind == IMAGE_AREA_VDSO && !strcmp(a->path, "[vdso]") &&
			      c->vdso_end - c->vdso_start == a->a.end - a->a.start;
		a->dumped = (a->a.kind != IMAGE_AREA_VDSO && a->a.kind != IMAGE_AREA_SKIP) ||
			    a->own_vdso;
		c->nloads += a->dumped;
	}
	if (c->nloads + 1 >= PN_XNUM) {
		log_err("%s has %zu memory areas; export-core writes at most %u", c->image,
			c->nloads, PN_XNUM - 2);
		return -1;
	}
	if (build_notes(c) < 0)
		return -1;
	c->notes_off = sizeof(Elf64_Ehdr) + (c->nloads + 1) * sizeof(Elf64_Phdr);
	off = (c->notes_off + c->notes_len + PS - 1) & ~(uint64_t)(PS - 1);
	for (i = 0; i < c->nareas; i++) {
		struct c_area *a = &c->areas[i];

		if (!a->dumped)
			continue;
		a->off = off;
		/* Inaccessible and never stored (guard pages, reservations):
		 * nothing to read there, and no reason to grow the file by it. */
		a->filesz = !(a->a.prot & 7) && !a->nsaved ? 0 : a->a.end - a->a.start;
		off += a->filesz;
	}
	c->size = off;
	return 0;
}

static uint32_t phdr_flags(uint32_t prot)
{
	return (prot & 1 ? PF_R : 0) | (prot & 2 ? PF_W : 0) | (prot & 4 ? PF_X : 0);
}

/* The ELF header and program headers, through libelf. This comes first:
 * elf_update() sizes the file to what it wrote. */
static int write_headers(struct core *c)
{
	GElf_Ehdr eh;
	GElf_Phdr ph;
	Elf *e = NULL;
	size_t i, n = 0;
	int ret = -1;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		log_err("libelf: %s", elf_errmsg(-1));
		return -1;
	}
	e = elf_begin(c->fd, ELF_C_WRITE, NULL);
	if (!e || !gelf_newehdr(e, ELFCLASS64) || !gelf_getehdr(e, &eh))
		goto elf_err;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	if (!gelf_update_ehdr(e, &eh) || !gelf_newphdr(e, c->nloads + 1))
		goto elf_err;
	ph = (GElf_Phdr){ .p_type = PT_NOTE, .p_offset = c->notes_off,
			  .p_filesz = c->notes_len, .p_align = 4 };
	if (!gelf_update_phdr(e, (int)n++, &ph))
		goto elf_err;
	for (i = 0; i < c->nareas; i++) {
		const struct c_area *a = &c->areas[i];

		if (!a->dumped)
			continue;
		ph = (GElf_Phdr){ .p_type = PT_LOAD, .p_flags = phdr_flags(a->a.prot),
				  .p_offset = a->off, .p_vaddr = a->a.start,
				  .p_filesz = a->filesz, .p_memsz = a->a.end - a->a.start,
				  .p_align = PS };
		if (!gelf_update_phdr(e, (int)n++, &ph))
			goto elf_err;
	}
	elf_flagelf(e, ELF_C_SET, ELF_F_LAYOUT);
	if (elf_update(e, ELF_C_WRITE) < 0)
		goto elf_err;
	ret = 0;
	goto out;
elf_err:
	log_err("write the ELF headers of core %s: %s", c->out, elf_errmsg(-1));
out:
	elf_end(e);
	return ret;
}

static int put_pages(void *arg, uint32_t area, uint64_t first, const void *data,
		     uint64_t npages)
{
	struct core *c = arg;
	const struct c_area *a = &c->areas[area];

	if (!a->filesz)
		return 0;	/* not dumped (vdso block, [vsyscall]) */
	return pwrite_all(c->fd, data, npages * PS, a->off + first * PS, c->out);
}

/* Second pass: every stored page to its place in the core. The reader
 * checks the image again; the areas must be those of the first pass. */
static int write_pages(struct core *c)
{
	struct image_reader *r;
	struct image_header hdr;
	const void *p;
	uint64_t len;
	uint32_t type;
	size_t ai = 0;
	int fd, ret;

	if (image_open(c, &fd, &r) < 0)
		return -1;
	while ((ret = image_reader_next(r, &type, &p, &len)) > 0) {
		if (type == IMAGE_REC_HEADER) {
			memcpy(&hdr, p, sizeof(hdr));
			if (memcmp(&hdr, &c->hdr, sizeof(hdr)))
				goto changed;
		} else if (type == IMAGE_REC_AREA) {
			if (ai >= c->nareas || memcmp(p, &c->areas[ai].a, sizeof(c->areas[ai].a)))
				goto changed;
			ai++;
		} else if (type == IMAGE_REC_PAGES) {
			if (image_reader_pages(r, p, len, put_pages, c) < 0) {
				ret = -1;
				break;
			}
		}
	}
	goto out;
changed:
	log_err("%s changed while export-core was reading it", c->image);
	ret = -1;
out:
	image_reader_free(r);
	close(fd);
	return ret < 0 ? -1 : 0;
}

/* Copies pages [first, first + n) of area a from the mapped file, up to
 * the file's end (the rest stays zero, as in the mapping). */
static int copy_file_pages(struct core *c, const struct c_area *a, int ffd, uint64_t first,
			   uint64_t n)
{
	uint64_t done = 0, len = n * PS;

	while (done < len) {
		size_t want = len - done < COPY_CHUNK ? (size_t)(len - done) : COPY_CHUNK;
		ssize_t got = pread(ffd, c->buf, want, (off_t)(a->a.pgoff + first * PS + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			log_perror("read %s for the core", a->path);
			return -1;
		}
		if (!got)
			break;
		if (pwrite_all(c->fd, c->buf, (size_t)got, a->off + first * PS + done, c->out) < 0)
			return -1;
		done += (uint64_t)got;
	}
	return 0;
}

/* A mapped file cannot supply the pages: warn once per file. err: an errno
 * value for the message, or 0. */
static void stale_file(struct core *c, const struct c_area *a, const char *why, int err)
{
	if (c->warned && !strcmp(c->warned, a->path))
		return;
	c->warned = a->path;
	c->nstale++;
	if (err) {
		errno = err;
		log_pwarn("%s %s for the pages the image does not hold (zero in the core)", why,
			  a->path);
	} else {
		log_warn("%s %s since the checkpoint: the pages the image does not hold are zero "
			 "in the core", a->path, why);
	}
}

/* The pages of a file mapping that the image does not hold: the file's. */
static int fill_area(struct core *c, const struct c_area *a)
{
	uint64_t npages = (a->a.end - a->a.start) / PS, next = 0;
	struct stat st;
	size_t i;
	int ffd, ret = -1;

	if (a->nsaved == 1 && a->saved[0].first == 0 && a->saved[0].count == npages)
		return 0;	/* all stored */
	ffd = open(a->path, O_RDONLY | O_CLOEXEC);
	if (ffd < 0) {
		stale_file(c, a, "cannot open", errno);
		return 0;
	}
	if (fstat(ffd, &st) < 0) {
		stale_file(c, a, "cannot stat", errno);
		ret = 0;
		goto out;
	}
	if ((uint64_t)st.st_size != a->a.file_size ||
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != a->a.mtime_ns) {
		stale_file(c, a, (uint64_t)st.st_size != a->a.file_size ? "changed size" :
			   "was modified", 0);
		ret = 0;
		goto out;
	}
	for (i = 0; i <= a->nsaved; i++) {
		uint64_t end = i < a->nsaved ? a->saved[i].first : npages;

		if (end > next && copy_file_pages(c, a, ffd, next, end - next) < 0)
			goto out;
		if (i < a->nsaved)
			next = a->saved[i].first + a->saved[i].count;
	}
	ret = 0;
out:
	close(ffd);
	return ret;
}

static int fill_files(struct core *c)
{
	size_t i;

	for (i = 0; i < c->nareas; i++) {
		const struct c_area *a = &c->areas[i];

		if (a->own_vdso && pwrite_all(c->fd, (const void *)(uintptr_t)c->vdso_start,
					      a->filesz, a->off, c->out) < 0)
			return -1;

		if (!a->filesz || !is_file_area(a) || (a->a.flags & IMAGE_AREA_F_DELETED))
			continue;
		if (!c->buf && !(c->buf = malloc(COPY_CHUNK))) {
			log_err("out of memory");
			return -1;
		}
		if (fill_area(c, a) < 0)
			return -1;
	}
	return 0;
}

/* NT_PRPSINFO's pr_psargs: the start of the argument strings, from the
 * core's memory (the program name when they are not there). */
static void fill_psargs(struct core *c)
{
	struct elf_prpsinfo ps;
	uint64_t start = c->proc.arg_start, n = 0;
	ssize_t got = 0;
	size_t i;

	memcpy(&ps, c->notes + c->psinfo_off, sizeof(ps));
	for (i = 0; i < c->nareas && start; i++) {
		const struct c_area *a = &c->areas[i];

		if (!a->filesz || start < a->a.start || start >= a->a.end)
			continue;
		n = c->proc.arg_end > start ? c->proc.arg_end - start : 0;
		if (n > sizeof(ps.pr_psargs) - 1)
			n = sizeof(ps.pr_psargs) - 1;
		if (n > a->a.end - start)
			n = a->a.end - start;
		got = pread(c->fd, ps.pr_psargs, n, (off_t)(a->off + start - a->a.start));
		break;
	}
	n = got > 0 ? (uint64_t)got : 0;
	for (i = 0; i < n; i++)
		if (!ps.pr_psargs[i])
			ps.pr_psargs[i] = ' ';
	while (n && ps.pr_psargs[n - 1] == ' ')
		n--;
	ps.pr_psargs[n] = '\0';
	if (!n)
		memcpy(ps.pr_psargs, ps.pr_fname, sizeof(ps.pr_fname));
	memcpy(c->notes + c->psinfo_off, &ps, sizeof(ps));
}

/* A new file beside out, mode 0600; its name in *tmp (freed by the caller). */
static int open_tmp(struct core *c, char **tmp)
{
	size_t len = strlen(c->out) + sizeof(".XXXXXX");

	*tmp = malloc(len);
	if (!*tmp) {
		log_err("out of memory");
		return -1;
	}
	snprintf(*tmp, len, "%s.XXXXXX", c->out);
	c->fd = mkostemp(*tmp, O_CLOEXEC);
	if (c->fd < 0) {
		log_perror("create core %s", *tmp);
		free(*tmp);
		*tmp = NULL;
		return -1;
	}
	if (fchmod(c->fd, 0600) < 0) {
		log_perror("chmod core %s", *tmp);
		return -1;
	}
	return 0;
}

int core_export(const char *image, const char *out, const uint8_t *key, struct core_result *res)
{
	struct core c = { .image = image, .key = key, .fd = -1 };
	char def[64], *tmp = NULL;
	int ret = -1;

	if (read_layout(&c) < 0 || plan(&c) < 0)
		goto out;
	if (!out) {
		snprintf(def, sizeof(def), "core.%u", c.proc.pid);
		out = def;
	}
	c.out = out;
	if (open_tmp(&c, &tmp) < 0 || write_headers(&c) < 0)
		goto out;
	if (ftruncate(c.fd, (off_t)c.size) < 0) {
		log_perror("size core %s to %llu bytes", out, (unsigned long long)c.size);
		goto out;
	}
	if (write_pages(&c) < 0 || fill_files(&c) < 0)
		goto out;
	fill_psargs(&c);
	if (pwrite_all(c.fd, c.notes, c.notes_len, c.notes_off, out) < 0)
		goto out;
	ret = close(c.fd);
	c.fd = -1;
	if (ret < 0) {
		log_perror("close core %s", out);
		goto out;
	}
	ret = rename(tmp, out);
	if (ret < 0) {
		log_perror("rename %s to %s", tmp, out);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (res) {
		memset(res, 0, sizeof(*res));
		snprintf(res->path, sizeof(res->path), "%s", out);
		res->nthreads = (uint32_t)c.nthreads;
		res->nloads = (uint32_t)c.nloads;
		res->size = c.size;
		res->nstale = c.nstale;
	}
out:
	if (c.fd >= 0)
		close(c.fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	core_free(&c);
	return ret;
}
