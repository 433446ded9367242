/* cryo_image: looks inside a checkpoint image.
 *
 *   cryo_image info [--json] IMAGE   what the image holds
 *   cryo_image verify IMAGE          every checksum, every page decoded
 *   cryo_image export-core IMAGE [-o FILE]
 *                                    an ELF core for gdb (mtcp/core.c)
 *   cryo_image merge IMAGE -o OUT    an incremental image and its chain
 *                                    flattened into one full image
 *   cryo_image rm [--force] IMAGE... delete images no other image needs
 *
 * Incremental images (doc/incremental.md): info shows the PARENT record
 * and the pages kept from the parent; verify checks the whole chain (every
 * parent there, whole, and the one its child was written after); merge
 * reads the chain as cryo_restart does (restart/loader.c) and writes what
 * it composes; rm refuses to delete an image that another image of its
 * directory names as its parent, unless --force.
 *
 * For info and verify, IMAGE may be "-" for standard input, so a migration
 * stream can be checked through a pipe. Both commands read the whole stream
 * through the reader of mtcp/image_read.c, which checks every record's
 * CRC-32C, the structure and, at the end, the SHA-256 in the trailer: info
 * therefore also refuses a damaged image, after printing (in text form)
 * what it read before the damage. verify additionally decompresses every
 * PAGES record. export-core reads the image twice, so it takes a file.
 * A sealed image needs its key (--key-file FILE, or CRYO_KEY_FILE); info
 * shows a sealed image's clear HEADER even without it.
 *
 * Exit status: 0 when the image is whole (and, for export-core, the core
 * written), 1 when it is not (one error line on stderr), 2 for a usage
 * error. */
#define LOG_PREFIX ""
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include "mtcp/core.h"
#include "mtcp/image.h"
#include "mtcp/key.h"
#include "mtcp/log.h"
#include "restart/loader.h"

struct info_area {
	struct image_area a;
	char *path;
	uint64_t stored;	/* pages found in PAGES records */
	uint64_t kept;		/* pages KEEP records keep from the parent */
};

struct info {
	const char *name;
	bool have_header, have_process, complete;
	struct image_header hdr;
	struct image_process proc;
	struct info_area *areas;
	size_t nareas;
	struct image_thread *threads;
	size_t nthreads;
	struct image_siginfo *sigs;
	size_t nsigs;
	struct image_plugin *plugins;
	size_t nplugins;
	bool have_parent;
	struct image_parent parent;
	uint64_t kept;
	uint64_t records;	/* every record, HEADER and TRAILER included */
	uint64_t bytes;		/* stream length */
	uint64_t pages, raw_bytes, stored_bytes, fd_records;
	uint64_t chunks_raw, chunks_zstd;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: cryo_image info [--json] [--key-file KEY] IMAGE\n"
		   "       cryo_image verify [--key-file KEY] IMAGE\n"
		   "       cryo_image export-core [--key-file KEY] IMAGE [-o FILE]\n"
		   "       cryo_image merge [--key-file KEY] [--compress N] IMAGE -o OUT\n"
		   "       cryo_image rm [--force] IMAGE...\n"
		   "       cryo_image --help | --version\n"
		   "\n"
		   "  info      show the header, process, memory areas, threads, pending\n"
		   "            signals and totals of a checkpoint image (checks it too)\n"
		   "  --json    the same as one JSON object\n"
		   "  verify    check every record's CRC-32C, decode every page chunk and\n"
		   "            check the trailer's SHA-256 and counts\n"
		   "  export-core\n"
		   "            write an ELF core of the checkpointed process (memory, one\n"
		   "            note set per thread) for `gdb PROGRAM FILE`; checks the image\n"
		   "  -o FILE   the core file (default: core.PID in the current directory)\n"
		   "  merge     write an incremental image's whole chain as one full image\n"
		   "            OUT (sealed with the same key when the chain is)\n"
		   "  --compress N  zstd level of the merged image (default 1, 0: raw)\n"
		   "  rm        delete images; refused for an image another image in its\n"
		   "            directory names as its parent (--force: delete anyway)\n"
		   "  --key-file KEY\n"
		   "            the key of an encrypted image (32 raw bytes or 64 hex digits,\n"
		   "            mode 0600); default: the file named by CRYO_KEY_FILE\n"
		   "\n"
		   "IMAGE may be - for standard input (info and verify). Exit status: 0 whole\n"
		   "(core written), 1 damaged or unreadable (no core), 2 usage error.\n"
		   "CRYO_LOG=debug shows more.\n");
}

/* Appends one element to an array grown by doubling; -1 after logging. */
static int grow(void **arr, size_t *n, size_t size, const void *elem)
{
	if (!(*n & (*n - 1))) {
		void *p = realloc(*arr, (*n ? *n * 2 : 1) * size);

		if (!p) {
			log_err("out of memory");
			return -1;
		}
		*arr = p;
	}
	memcpy((char *)*arr + *n * size, elem, size);
	(*n)++;
	return 0;
}

static void info_free(struct info *in)
{
	size_t i;

	for (i = 0; i < in->nareas; i++)
		free(in->areas[i].path);
	free(in->areas);
	free(in->threads);
	free(in->sigs);
	free(in->plugins);
}

static int info_pages(struct info *in, const void *payload, uint64_t len)
{
	struct image_pages pg;
	const struct image_run *runs = (const void *)((const char *)payload + sizeof(pg));
	uint64_t n = 0;
	uint32_t i;

	(void)len;	/* the reader checked the layout */
	memcpy(&pg, payload, sizeof(pg));
	for (i = 0; i < pg.nruns; i++)
		n += runs[i].count;
	if (pg.area < in->nareas)
		in->areas[pg.area].stored += n;
	in->pages += n;
	in->raw_bytes += pg.raw_len;
	in->stored_bytes += pg.stored_len;
	if (pg.codec == IMAGE_CODEC_ZSTD)
		in->chunks_zstd++;
	else
		in->chunks_raw++;
	return 0;
}

static int count_put(void *arg, uint32_t area, uint64_t first, const void *data, uint64_t npages)
{
	(void)area;
	(void)first;
	(void)data;
	*(uint64_t *)arg += npages;
	return 0;
}

/* Reads the whole image into *in; with decode, every chunk is decompressed
 * too. 0 when the image is whole, -1 after the reader (or we) logged why. */
static int info_read(struct image_reader *r, struct info *in, bool decode)
{
	uint64_t decoded = 0;
	const void *p;
	uint64_t len;
	uint32_t type;
	int ret;

	while ((ret = image_reader_next(r, &type, &p, &len)) > 0) {
		in->records++;
		switch (type) {
		case IMAGE_REC_HEADER:
			memcpy(&in->hdr, p, sizeof(in->hdr));
			in->have_header = true;
			break;
		case IMAGE_REC_PROCESS:
			memcpy(&in->proc, p, sizeof(in->proc));
			in->have_process = true;
			break;
		case IMAGE_REC_AREA: {
			struct info_area a = { 0 };

			memcpy(&a.a, p, sizeof(a.a));
			a.path = strndup((const char *)p + sizeof(a.a), a.a.path_len);
			if (!a.path) {
				log_err("out of memory");
				return -1;
			}
			if (grow((void **)&in->areas, &in->nareas, sizeof(a), &a) < 0) {
				free(a.path);
				return -1;
			}
			break;
		}
		case IMAGE_REC_THREAD:
			if (grow((void **)&in->threads, &in->nthreads, sizeof(*in->threads), p) < 0)
				return -1;
			break;
		case IMAGE_REC_SIGINFO:
			if (grow((void **)&in->sigs, &in->nsigs, sizeof(*in->sigs), p) < 0)
				return -1;
			break;
		case IMAGE_REC_PLUGIN:
			if (grow((void **)&in->plugins, &in->nplugins, sizeof(*in->plugins), p) < 0)
				return -1;
			break;
		case IMAGE_REC_FD:
			in->fd_records++;
			break;
		case IMAGE_REC_PARENT:
			memcpy(&in->parent, p, sizeof(in->parent));
			in->have_parent = true;
			break;
		case IMAGE_REC_KEEP: {
			struct image_keep k;
			struct image_run run;
			uint32_t i;

			memcpy(&k, p, sizeof(k));
			for (i = 0; i < k.nruns; i++) {
				memcpy(&run, (const uint8_t *)p + sizeof(k) + (size_t)i * sizeof(run),
				       sizeof(run));
				if (k.area < in->nareas)
					in->areas[k.area].kept += run.count;
				in->kept += run.count;
			}
			break;
		}
		case IMAGE_REC_PAGES:
			info_pages(in, p, len);
			if (decode && image_reader_pages(r, p, len, count_put, &decoded) < 0)
				return -1;
			break;
		}
	}
	if (ret < 0)
		return -1;
	in->records++;	/* the trailer */
	in->bytes = image_reader_offset(r) + sizeof(struct image_rec_hdr) +
		    sizeof(struct image_trailer);
	in->complete = true;
	if (decode && decoded != in->pages) {
		log_err("%s: decoded %llu pages of %llu", in->name, (unsigned long long)decoded,
			(unsigned long long)in->pages);
		return -1;
	}
	return 0;
}

/* ---- text output ---- */

static void fmt_time(uint64_t ns, char *buf, size_t size)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, size, "?");
	else
		snprintf(buf + strlen(buf), size - strlen(buf), ".%03u UTC",
			 (unsigned)(ns / 1000000 % 1000));
}

/* "968 KiB", "1.5 GiB" */
static void fmt_size(uint64_t n, char *buf, size_t size)
{
	static const char units[][4] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u && v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* "a b" for the set bits of flags named in names[] (bit i: names[i]), plus
 * the unnamed rest in hex; "-" when none. */
static void fmt_flags(uint64_t flags, const char *const *names, int nnames, char *buf, size_t size)
{
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < nnames && n < size; i++)
		if (flags & (1ull << i))
			n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "," : "", names[i]);
	flags &= nnames < 64 ? ~((1ull << nnames) - 1) : 0;
	if (flags && n < size)
		n += (size_t)snprintf(buf + n, size - n, "%s0x%llx", n ? "," : "",
				      (unsigned long long)flags);
	if (!n)
		snprintf(buf, size, "-");
}

static const char *const hdr_flag_names[] = { "stream", "exit-after", "encrypted", "incremental" };
static const char *const area_flag_names[] = { "heap", "stack", "deleted", "libcryo" };
static const char *const thread_flag_names[] = { "main", "ckpt" };
#define NNAMES(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void fmt_prot(const struct image_area *a, char out[5])
{
	out[0] = a->prot & 1 ? 'r' : '-';	/* PROT_READ */
	out[1] = a->prot & 2 ? 'w' : '-';	/* PROT_WRITE */
	out[2] = a->prot & 4 ? 'x' : '-';	/* PROT_EXEC */
	out[3] = a->kind == IMAGE_AREA_FILE_SHARED || a->kind == IMAGE_AREA_SHARED_ANON ? 's' : 'p';
	out[4] = '\0';
}

static const char *sig_name(uint32_t signo)
{
	const char *s = signo < 65 ? sigabbrev_np((int)signo) : NULL;

	return s ? s : "?";
}

#define STR(field) (int)sizeof(field), (field)	/* a fixed char[] that may lack a NUL */

static void print_text(const struct info *in)
{
	const struct image_header *h = &in->hdr;
	const struct image_process *p = &in->proc;
	char buf[128];
	size_t i;

	if (!in->have_header)
		return;
	printf("image:       %s\n", in->name);
	printf("format:      version %u, x86-64, %u-byte pages\n", h->version, h->page_size);
	printf("program:     %.*s\n", STR(h->program));
	printf("host:        %.*s\n", STR(h->hostname));
	printf("kernel:      %.*s\n", STR(h->kernel));
	printf("build:       %.*s\n", STR(h->build));
	fmt_time(h->time_ns, buf, sizeof(buf));
	printf("time:        %s\n", buf);
	printf("generation:  %u\n", h->generation);
	fmt_flags(h->flags, hdr_flag_names, NNAMES(hdr_flag_names), buf, sizeof(buf));
	printf("flags:       %s\n", buf);
	if (in->have_parent) {
		char hex[65];

		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", in->parent.sha256[i]);
		printf("parent:      %.*s (generation %u, %u incremental image%s from the full one, "
		       "SHA-256 %s)\n", STR(in->parent.name), in->parent.generation, in->parent.depth,
		       in->parent.depth == 1 ? "" : "s", hex);
	}
	if (in->have_process) {
		printf("\nprocess:     pid %u, ppid %u, pgid %u, sid %u, umask %03o\n", p->pid,
		       p->ppid, p->pgid, p->sid, p->umask);
		printf("ids:         upid %llx, computation %llx\n", (unsigned long long)p->upid,
		       (unsigned long long)p->comp_id);
		printf("cwd:         %.*s\n", STR(p->cwd));
		printf("exe:         %.*s\n", STR(p->exe));
		printf("brk:         %llx-%llx\n", (unsigned long long)p->start_brk,
		       (unsigned long long)p->brk);
		printf("vdso:        %llx (block %llx-%llx)\n", (unsigned long long)p->vdso_start,
		       (unsigned long long)p->vdso_block_start,
		       (unsigned long long)(p->vdso_block_start + p->vdso_block_len));
	}

	printf("\nareas (%zu):\n", in->nareas);
	if (in->have_parent)
		printf("  %3s %-33s %-4s %-11s %-12s %8s %8s  %s\n", "#", "start-end", "prot", "kind",
		       "flags", "pages", "kept", "path");
	else
		printf("  %3s %-33s %-4s %-11s %-12s %8s  %s\n", "#", "start-end", "prot", "kind",
		       "flags", "pages", "path");
	for (i = 0; i < in->nareas; i++) {
		const struct info_area *a = &in->areas[i];
		char prot[5], range[40];

		fmt_prot(&a->a, prot);
		fmt_flags(a->a.flags, area_flag_names, NNAMES(area_flag_names), buf, sizeof(buf));
		snprintf(range, sizeof(range), "%016llx-%016llx", (unsigned long long)a->a.start,
			 (unsigned long long)a->a.end);
		if (in->have_parent)
			printf("  %3zu %-33s %-4s %-11s %-12s %8llu %8llu  %s\n", i, range, prot,
			       image_area_kind_name(a->a.kind), buf, (unsigned long long)a->stored,
			       (unsigned long long)a->kept, a->path);
		else
			printf("  %3zu %-33s %-4s %-11s %-12s %8llu  %s\n", i, range, prot,
			       image_area_kind_name(a->a.kind), buf, (unsigned long long)a->stored,
			       a->path);
	}

	printf("\nthreads (%zu):\n", in->nthreads);
	printf("  %8s %-10s %-16s %s\n", "tid", "flags", "rip", "rsp");
	for (i = 0; i < in->nthreads; i++) {
		const struct image_thread *t = &in->threads[i];

		fmt_flags(t->flags, thread_flag_names, NNAMES(thread_flag_names), buf, sizeof(buf));
		printf("  %8u %-10s %016llx %016llx\n", t->tid, buf,
		       (unsigned long long)t->gregs[IMAGE_REG_RIP],
		       (unsigned long long)t->gregs[IMAGE_REG_RSP]);
	}

	printf("\npending signals (%zu):\n", in->nsigs);
	for (i = 0; i < in->nsigs; i++) {
		const struct image_siginfo *s = &in->sigs[i];

		if (s->tid)
			printf("  SIG%s (%u) to thread %u\n", sig_name(s->signo), s->signo, s->tid);
		else
			printf("  SIG%s (%u) to the process\n", sig_name(s->signo), s->signo);
	}
	if (in->nplugins) {
		printf("\nplugins (%zu):\n", in->nplugins);
		for (i = 0; i < in->nplugins; i++)
			printf("  %-32.*s version %u, %u bytes\n", STR(in->plugins[i].name),
			       in->plugins[i].version, in->plugins[i].len);
	}

	printf("\ntotals:\n");
	if (in->complete)
		printf("  records:      %llu\n", (unsigned long long)in->records);
	else
		printf("  records:      %llu read before the error\n",
		       (unsigned long long)in->records);
	fmt_size(in->raw_bytes, buf, sizeof(buf));
	printf("  pages stored: %llu (%s) in %llu chunks, %llu zstd and %llu raw\n",
	       (unsigned long long)in->pages, buf, (unsigned long long)(in->chunks_raw + in->chunks_zstd),
	       (unsigned long long)in->chunks_zstd, (unsigned long long)in->chunks_raw);
	if (in->have_parent)
		printf("  pages kept:   %llu (the parent's)\n", (unsigned long long)in->kept);
	if (in->stored_bytes)
		printf("  page data:    %llu bytes stored, compression ratio %.2f\n",
		       (unsigned long long)in->stored_bytes,
		       (double)in->raw_bytes / (double)in->stored_bytes);
	if (in->fd_records)
		printf("  fd records:   %llu\n", (unsigned long long)in->fd_records);
	if (in->complete)
		printf("  image bytes:  %llu\n", (unsigned long long)in->bytes);
}

/* ---- JSON output ---- */

static void json_str(const char *s, size_t max)
{
	size_t i;

	putchar('"');
	for (i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_flags(uint64_t flags, const char *const *names, int nnames)
{
	char buf[128], *tok, *save = NULL;
	bool first = true;

	fmt_flags(flags, names, nnames, buf, sizeof(buf));
	putchar('[');
	if (strcmp(buf, "-"))
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			printf("%s", first ? "" : ", ");
			json_str(tok, sizeof(buf));
			first = false;
		}
	putchar(']');
}

static void print_json(const struct info *in)
{
	const struct image_header *h = &in->hdr;
	const struct image_process *p = &in->proc;
	size_t i;

	printf("{\n  \"image\": ");
	json_str(in->name, (size_t)-1);
	printf(",\n  \"header\": {\"version\": %u, \"arch\": \"x86-64\", \"page_size\": %u, ",
	       h->version, h->page_size);
	printf("\"program\": ");
	json_str(h->program, sizeof(h->program));
	printf(", \"hostname\": ");
	json_str(h->hostname, sizeof(h->hostname));
	printf(", \"kernel\": ");
	json_str(h->kernel, sizeof(h->kernel));
	printf(", \"build\": ");
	json_str(h->build, sizeof(h->build));
	printf(", \"time_ns\": %llu, \"generation\": %u, \"nareas\": %u, \"nthreads\": %u, "
	       "\"flags\": ", (unsigned long long)h->time_ns, h->generation, h->nareas,
	       h->nthreads);
	json_flags(h->flags, hdr_flag_names, NNAMES(hdr_flag_names));
	if (in->have_parent) {
		printf("},\n  \"parent\": {\"name\": ");
		json_str(in->parent.name, sizeof(in->parent.name));
		printf(", \"generation\": %u, \"depth\": %u, \"sha256\": \"", in->parent.generation,
		       in->parent.depth);
		for (i = 0; i < 32; i++)
			printf("%02x", in->parent.sha256[i]);
		printf("\", \"kept_pages\": %llu", (unsigned long long)in->kept);
	}
	printf("},\n  \"process\": {\"pid\": %u, \"ppid\": %u, \"pgid\": %u, \"sid\": %u, "
	       "\"upid\": %llu, \"comp_id\": %llu, \"umask\": %u, \"cwd\": ", p->pid, p->ppid,
	       p->pgid, p->sid, (unsigned long long)p->upid, (unsigned long long)p->comp_id,
	       p->umask);
	json_str(p->cwd, sizeof(p->cwd));
	printf(", \"exe\": ");
	json_str(p->exe, sizeof(p->exe));
	printf(", \"start_brk\": %llu, \"brk\": %llu, \"vdso_start\": %llu, "
	       "\"vdso_block_start\": %llu, \"vdso_block_len\": %llu},\n",
	       (unsigned long long)p->start_brk, (unsigned long long)p->brk,
	       (unsigned long long)p->vdso_start, (unsigned long long)p->vdso_block_start,
	       (unsigned long long)p->vdso_block_len);

	printf("  \"areas\": [");
	for (i = 0; i < in->nareas; i++) {
		const struct info_area *a = &in->areas[i];
		char prot[5];

		fmt_prot(&a->a, prot);
		printf("%s\n    {\"start\": %llu, \"end\": %llu, \"prot\": \"%s\", "
		       "\"kind\": \"%s\", \"flags\": ", i ? "," : "", (unsigned long long)a->a.start,
		       (unsigned long long)a->a.end, prot, image_area_kind_name(a->a.kind));
		json_flags(a->a.flags, area_flag_names, NNAMES(area_flag_names));
		printf(", \"pgoff\": %llu, \"pages\": %llu, \"path\": ",
		       (unsigned long long)a->a.pgoff, (unsigned long long)a->stored);
		json_str(a->path, a->a.path_len);
		putchar('}');
	}
	printf("%s],\n  \"threads\": [", in->nareas ? "\n  " : "");
	for (i = 0; i < in->nthreads; i++) {
		const struct image_thread *t = &in->threads[i];

		printf("%s\n    {\"tid\": %u, \"flags\": ", i ? "," : "", t->tid);
		json_flags(t->flags, thread_flag_names, NNAMES(thread_flag_names));
		printf(", \"rip\": %llu, \"rsp\": %llu, \"fs_base\": %llu}",
		       (unsigned long long)t->gregs[IMAGE_REG_RIP],
		       (unsigned long long)t->gregs[IMAGE_REG_RSP], (unsigned long long)t->fs_base);
	}
	printf("%s],\n  \"signals\": [", in->nthreads ? "\n  " : "");
	for (i = 0; i < in->nsigs; i++)
		printf("%s\n    {\"tid\": %u, \"signo\": %u, \"name\": \"SIG%s\"}", i ? "," : "",
		       in->sigs[i].tid, in->sigs[i].signo, sig_name(in->sigs[i].signo));
	printf("%s],\n  \"plugins\": [", in->nsigs ? "\n  " : "");
	for (i = 0; i < in->nplugins; i++) {
		printf("%s\n    {\"name\": ", i ? "," : "");
		json_str(in->plugins[i].name, sizeof(in->plugins[i].name));
		printf(", \"version\": %u, \"bytes\": %u}", in->plugins[i].version,
		       in->plugins[i].len);
	}
	printf("%s],\n  \"totals\": {\"records\": %llu, \"pages\": %llu, \"raw_bytes\": %llu, "
	       "\"stored_bytes\": %llu, \"chunks_raw\": %llu, \"chunks_zstd\": %llu, "
	       "\"fd_records\": %llu, \"bytes\": %llu}\n}\n", in->nplugins ? "\n  " : "",
	       (unsigned long long)in->records, (unsigned long long)in->pages,
	       (unsigned long long)in->raw_bytes, (unsigned long long)in->stored_bytes,
	       (unsigned long long)in->chunks_raw, (unsigned long long)in->chunks_zstd,
	       (unsigned long long)in->fd_records, (unsigned long long)in->bytes);
}

/* ---- commands ---- */

static int open_image(const char *path)
{
	int fd;

	if (!strcmp(path, "-"))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		log_perror("open image %s", path);
	return fd;
}

/* Checks the chain below an incremental image (info of it in *child):
 * every parent there, whole, of the same process and the very image its
 * child was written after. The number of parents, or -1 after logging. */
static int verify_chain(const char *path, const struct info *child, const uint8_t *key, char *full,
			size_t fullsz)
{
	struct image_parent want = child->parent;
	char cur[PATH_MAX], ppath[PATH_MAX];
	int n = 0;

	snprintf(cur, sizeof(cur), "%s", path);
	for (;;) {
		struct info in = { 0 };
		struct image_reader *r;
		uint8_t sha[32];
		uint64_t bytes;
		int fd, ok;

		if (loader_parent_path(cur, want.name, ppath, sizeof(ppath)) < 0) {
			log_err("%s: the path of its parent is too long", cur);
			return -1;
		}
		fd = open(ppath, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				log_err("%s: its parent %s is missing: an incremental image needs every image "
					"of its chain down to a full one", cur, ppath);
			else
				log_perror("%s: open its parent %s", cur, ppath);
			return -1;
		}
		in.name = ppath;
		r = image_reader_new(fd, ppath);
		ok = r && image_reader_set_key(r, key) == 0 && info_read(r, &in, true) == 0;
		if (ok && (image_reader_digest(r, sha, &bytes) < 0 || memcmp(sha, want.sha256, 32) ||
			   in.hdr.generation != want.generation || in.proc.upid != want.upid)) {
			log_err("%s: its parent %s is not the image it was written after (generation %u, "
				"SHA-256 %s)", cur, ppath, in.hdr.generation,
				memcmp(sha, want.sha256, 32) ? "differs" : "matches");
			ok = 0;
		}
		if (ok && (in.have_parent ? in.parent.depth + 1 != want.depth : want.depth != 1)) {
			log_err("%s: the chain is inconsistent at %s (depth %u)", cur, ppath, want.depth);
			ok = 0;
		}
		image_reader_free(r);
		close(fd);
		n++;
		if (!ok) {
			info_free(&in);
			return -1;
		}
		snprintf(cur, sizeof(cur), "%s", ppath);
		want = in.parent;
		if (!in.have_parent) {
			snprintf(full, fullsz, "%s", ppath);
			info_free(&in);
			return n;
		}
		info_free(&in);
	}
}

static int run(const char *path, bool verify, bool json, const uint8_t *key)
{
	struct info in = { .name = path };
	struct image_reader *r;
	int fd, ret = 1;

	fd = open_image(path);
	if (fd < 0)
		return 1;
	r = image_reader_new(fd, path);
	if (!r || image_reader_set_key(r, key) < 0)
		goto out;
	if (info_read(r, &in, verify) == 0)
		ret = 0;
	if (verify) {
		char full[PATH_MAX] = "", chain[PATH_MAX + 64] = "";
		int n = 0;

		if (!ret && in.have_parent) {
			n = verify_chain(path, &in, key, full, sizeof(full));
			if (n < 0)
				ret = 1;
			else
				snprintf(chain, sizeof(chain), "; incremental, its chain of %d parent%s down to "
					 "%s checked", n, n == 1 ? "" : "s", full);
		}
		if (!ret)
			printf("%s: ok (%llu records, %llu pages, %llu bytes%s)\n", path,
			       (unsigned long long)in.records, (unsigned long long)in.pages,
			       (unsigned long long)in.bytes, chain);
	} else if (json) {
		if (!ret)
			print_json(&in);
	} else {
		print_text(&in);
	}
	if (fflush(stdout) != 0 && !ret) {
		log_perror("write to standard output");
		ret = 1;
	}
out:
	image_reader_free(r);
	info_free(&in);
	if (fd > 0)
		close(fd);
	return ret;
}

/* The first records of an image: its HEADER and, for an incremental one,
 * its PARENT. 0, -1 after logging. */
static int peek(const char *path, const uint8_t *key, struct image_header *h, bool *has_parent,
		struct image_parent *parent)
{
	struct image_reader *r;
	const void *p;
	uint64_t len;
	uint32_t type;
	int fd, st = 0, ret = -1, n = 0;

	*has_parent = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_perror("open image %s", path);
		return -1;
	}
	r = image_reader_new(fd, path);
	if (r && image_reader_set_key(r, key) == 0) {
		while (n < 3 && (st = image_reader_next(r, &type, &p, &len)) == 1) {
			n++;
			if (type == IMAGE_REC_HEADER)
				memcpy(h, p, sizeof(*h));
			if (type == IMAGE_REC_PARENT) {
				memcpy(parent, p, sizeof(*parent));
				*has_parent = true;
			}
			if (n == 2 && !(h->flags & IMAGE_HDR_INCREMENTAL))
				break;
		}
		ret = st < 0 ? -1 : 0;
	}
	image_reader_free(r);
	close(fd);
	return ret;
}

/* cryo_image merge: the chain composed as cryo_restart would, written out
 * as one full image (through OUT.tmp, renamed when whole). */
static int merge(const char *path, const char *out, int level, const uint8_t *key)
{
	struct loaded_image img;
	struct image_writer *w = NULL;
	struct image_header h;
	char tmp[PATH_MAX];
	size_t i, k;
	int fd, ofd = -1, ret = 1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", out) >= (int)sizeof(tmp)) {
		log_err("output name too long: %s", out);
		return 1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_perror("open image %s", path);
		return 1;
	}
	loader_set_key(key);
	loader_set_keep_records(1);
	if (loader_read(fd, path, &img) < 0) {
		close(fd);
		return 1;
	}
	close(fd);
	ofd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ofd < 0) {
		log_perror("create %s", tmp);
		goto out;
	}
	w = image_writer_new(level);
	if (!w || (key && (image_writer_set_key(w, key) < 0 || image_writer_prepare(w) < 0)))
		goto out;
	h = img.hdr;
	h.version = IMAGE_VERSION;
	h.flags &= ~(uint64_t)(IMAGE_HDR_INCREMENTAL | IMAGE_HDR_SEALED | IMAGE_HDR_STREAM);
	h.seal_salt = 0;
	memset(h.key_check, 0, sizeof(h.key_check));
	image_writer_begin(w, ofd);
	if (image_writer_record(w, IMAGE_REC_HEADER, &h, sizeof(h), NULL, 0) < 0 ||
	    image_writer_record(w, IMAGE_REC_PROCESS, &img.proc, sizeof(img.proc), NULL, 0) < 0)
		goto out;
	for (i = 0; i < img.nareas; i++) {
		struct image_area a = img.areas[i].a;

		a.npages = 0;
		for (k = 0; img.areas[i].staged && k < img.areas[i].nruns; k++)
			a.npages += img.areas[i].runs[k].count;
		if (image_writer_record(w, IMAGE_REC_AREA, &a, sizeof(a), img.areas[i].path, a.path_len) < 0)
			goto out;
	}
	for (i = 0; i < img.nthreads; i++)
		if (image_writer_record(w, IMAGE_REC_THREAD, &img.threads[i], sizeof(img.threads[i]), NULL, 0) < 0)
			goto out;
	for (i = 0; i < img.nrecords; i++)
		if (image_writer_record(w, img.records[i].type, img.records[i].data, img.records[i].len, NULL,
					0) < 0)
			goto out;
	for (i = 0; i < img.nareas; i++) {
		const struct loaded_area *la = &img.areas[i];

		for (k = 0; la->staged && k < la->nruns; k++)
			if (image_writer_pages(w, (uint32_t)i, la->runs[k].first,
					       img.arena + la->stage_off + la->runs[k].first * 4096,
					       la->runs[k].count) < 0)
				goto out;
	}
	if (image_writer_finish(w) < 0)
		goto out;
	if (fsync(ofd) < 0) {
		log_perror("fsync %s", tmp);
		goto out;
	}
	if (rename(tmp, out) < 0) {
		log_perror("rename %s to %s", tmp, out);
		goto out;
	}
	printf("%s: %llu pages from %d image%s, %llu bytes\n", out, (unsigned long long)image_writer_npages(w),
	       img.chain_len, img.chain_len == 1 ? "" : "s", (unsigned long long)image_writer_bytes(w));
	ret = 0;
out:
	if (ofd >= 0) {
		close(ofd);
		if (ret)
			unlink(tmp);
	}
	image_writer_free(w);
	loader_free(&img);
	return ret;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* cryo_image rm: deletes images, but not one another image of its
 * directory (not removed with it) names as its parent, unless force. */
static int rm_images(char **paths, int n, bool force, const uint8_t *key)
{
	int i, j, ret = 0;

	for (i = 0; i < n; i++) {
		struct image_header h;
		struct image_parent par;
		bool hp;
		char dir[PATH_MAX], cand[PATH_MAX + 256], needed[PATH_MAX + 256] = "";
		const char *slash = strrchr(paths[i], '/'), *base = slash ? slash + 1 : paths[i];
		struct dirent *de;
		DIR *d;

		if (peek(paths[i], key, &h, &hp, &par) < 0) {
			log_err("%s: not removed", paths[i]);
			ret = 1;
			continue;
		}
		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - paths[i]) : 1, slash ? paths[i] : ".");
		d = opendir(dir[0] ? dir : "/");
		if (!d) {
			log_perror("read directory %s to see which images need %s", dir, paths[i]);
			ret = 1;
			continue;
		}
		while ((de = readdir(d)) && !needed[0]) {
			bool removed_too = false;

			if (!ends_with(de->d_name, IMAGE_SUFFIX) || !strcmp(de->d_name, base))
				continue;
			if (snprintf(cand, sizeof(cand), "%s/%s", dir, de->d_name) >= (int)sizeof(cand))
				continue;
			for (j = 0; j < n; j++) {
				char a[PATH_MAX], b[PATH_MAX];

				if (realpath(paths[j], a) && realpath(cand, b) && !strcmp(a, b))
					removed_too = true;
			}
			if (removed_too)
				continue;
			{
				int saved = log_level_cur;

				log_setup(-1, log_fd());	/* a damaged file there is not this command's business */
				if (peek(cand, key, &h, &hp, &par) == 0 && hp &&
				    !strncmp(par.name, base, sizeof(par.name)))
					snprintf(needed, sizeof(needed), "%s", cand);
				log_setup(saved, log_fd());
			}
		}
		closedir(d);
		if (needed[0] && !force) {
			log_err("%s is the parent of %s: not removed (remove that image first, flatten it with "
				"cryo_image merge, or use --force)", paths[i], needed);
			ret = 1;
			continue;
		}
		if (needed[0])
			log_warn("removing %s, which %s needs: that image cannot be restarted any more", paths[i],
				 needed);
		if (unlink(paths[i]) < 0) {
			log_perror("remove %s", paths[i]);
			ret = 1;
		}
	}
	return ret;
}

static int export_core(const char *path, const char *out, const uint8_t *key)
{
	struct core_result res;
	struct image_header h;
	struct image_parent par;
	bool hp;

	if (peek(path, key, &h, &hp, &par) < 0)
		return 1;
	if (h.flags & IMAGE_HDR_INCREMENTAL) {
		log_err("%s is an incremental image: flatten it first (cryo_image merge %s -o FILE)", path, path);
		return 1;
	}

	if (core_export(path, out, key, &res) < 0)
		return 1;
	printf("%s: %u threads, %u memory segments%s\n", res.path, res.nthreads, res.nloads,
	       res.nstale ? ", some file pages missing (see the warnings)" : "");
	if (fflush(stdout) != 0) {
		log_perror("write to standard output");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool json = false, force = false;
	const char *cmd, *path = NULL, *out = NULL, *key_file = getenv(KEY_ENV);
	uint8_t key[KEY_LEN];
	char **paths;
	int i, ret, npaths = 0, level = 1;

	log_set_ident("cryo_image");
	log_init();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("cryo_image %s (image format version %u)\n", CRYO_VERSION, IMAGE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "info") && strcmp(cmd, "verify") && strcmp(cmd, "export-core") &&
	    strcmp(cmd, "merge") && strcmp(cmd, "rm")) {
		log_err("unknown command '%s' (try cryo_image --help)", cmd);
		return 2;
	}
	paths = calloc((size_t)argc, sizeof(*paths));
	if (!paths) {
		log_err("out of memory");
		return 1;
	}
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && !strcmp(cmd, "info")) {
			json = true;
		} else if (!strcmp(argv[i], "--force") && !strcmp(cmd, "rm")) {
			force = true;
		} else if (!strcmp(argv[i], "--compress") && !strcmp(cmd, "merge")) {
			char *end;

			if (++i == argc || (level = (int)strtol(argv[i], &end, 10), *end) || level < 0 ||
			    level > 22) {
				log_err("--compress needs a zstd level from 0 to 22 (try cryo_image --help)");
				return 2;
			}
		} else if (!strcmp(argv[i], "-o") && (!strcmp(cmd, "export-core") || !strcmp(cmd, "merge"))) {
			if (++i == argc || !argv[i][0]) {
				log_err("-o needs a file name (try cryo_image --help)");
				return 2;
			}
			out = argv[i];
		} else if (!strcmp(argv[i], "--key-file")) {
			if (++i == argc || !argv[i][0]) {
				log_err("--key-file needs a file name (try cryo_image --help)");
				return 2;
			}
			key_file = argv[i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			log_err("unknown option '%s' for %s (try cryo_image --help)", argv[i], cmd);
			return 2;
		} else if (path && strcmp(cmd, "rm")) {
			log_err("%s takes one image, not '%s' too", cmd, argv[i]);
			return 2;
		} else {
			path = argv[i];
			paths[npaths++] = argv[i];
		}
	}
	if (!path) {
		log_err("%s: which image? (cryo_image %s IMAGE)", cmd, cmd);
		return 2;
	}
	if (!strcmp(cmd, "merge") && !out) {
		log_err("merge: where to? (cryo_image merge IMAGE -o OUT)");
		return 2;
	}
	if ((!strcmp(cmd, "merge") || !strcmp(cmd, "rm")) && !strcmp(path, "-")) {
		log_err("%s works on files, not -", cmd);
		return 2;
	}
	if (!strcmp(cmd, "export-core")) {
		if (!strcmp(path, "-")) {
			log_err("export-core reads the image twice: give a file, not -");
			return 2;
		}
	}
	if (key_file && *key_file && key_load(key_file, key) < 0)
		return 1;
	key_file = key_file && *key_file ? key_file : NULL;
	if (!strcmp(cmd, "export-core"))
		ret = export_core(path, out, key_file ? key : NULL);
	else if (!strcmp(cmd, "merge"))
		ret = merge(path, out, level, key_file ? key : NULL);
	else if (!strcmp(cmd, "rm"))
		ret = rm_images(paths, npaths, force, key_file ? key : NULL);
	else
		ret = run(path, !strcmp(cmd, "verify"), json, key_file ? key : NULL);
	key_wipe(key, sizeof(key));
	free(paths);
	return ret;
}
