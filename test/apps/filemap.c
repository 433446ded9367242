/* filemap: file mappings across checkpoint/restart. The program creates two
 * 16-page files in its work directory (argv[1], else $TMPDIR, else /tmp)
 * and closes them after mapping:
 * - priv.dat mapped MAP_PRIVATE: some pages are written through the
 *   mapping (copy-on-write) before each checkpoint. After the restart those
 *   pages keep the written data, and the others still come from the file:
 *   a change made to the file with pwrite() shows through them (Linux
 *   behaviour for pages never written), while written pages do not see it.
 * - shared.dat mapped MAP_SHARED: writes go to the file. After the restart
 *   the mapping and the file (read with pread) agree, and a write on either
 *   side shows on the other. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/mman.h>

#define PAGE 4096
#define NP 16

static char dir[4096], priv_path[4200], shared_path[4200];
static unsigned char *priv, *shared;
static int dirty[NP];		/* private pages written through the mapping */

static void fill(unsigned char *p, int page, int tag)
{
	for (int i = 0; i < PAGE; i++)
		p[i] = (unsigned char)(page * 31 + i * 7 + tag);
}

static int same(const unsigned char *p, int page, int tag)
{
	for (int i = 0; i < PAGE; i++)
		if (p[i] != (unsigned char)(page * 31 + i * 7 + tag))
			return 0;
	return 1;
}

static void make_file(const char *path)
{
	unsigned char buf[PAGE];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	T_CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	for (int p = 0; p < NP; p++) {
		fill(buf, p, 0);
		T_CHECK(write(fd, buf, PAGE) == PAGE, "write %s", path);
	}
	close(fd);
}

static unsigned char *map_file(const char *path, int flags)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	void *m;

	T_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	m = mmap(NULL, NP * PAGE, PROT_READ | PROT_WRITE, flags, fd, 0);
	T_CHECK(m != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
	close(fd);	/* the mapping stays; no fd to restore */
	return m;
}

static void file_page(const char *path, int page, unsigned char *buf, int write_it)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	ssize_t r;

	T_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	if (write_it)
		r = pwrite(fd, buf, PAGE, (off_t)page * PAGE);
	else
		r = pread(fd, buf, PAGE, (off_t)page * PAGE);
	T_CHECK(r == PAGE, "%s page %d of %s", write_it ? "pwrite" : "pread", page, path);
	close(fd);
}

int main(int argc, char **argv)
{
	unsigned char buf[PAGE];
	int ftag[NP] = { 0 };	/* tag of each page of priv.dat on disk */
	int mtag[NP] = { 0 };	/* tag of each private page written through the map */
	int stag[NP] = { 0 };	/* tag of each page of shared.dat */

	t_init(argc, argv);
	snprintf(dir, sizeof(dir), "%s", t_workdir(argc, argv, 1));
	snprintf(priv_path, sizeof(priv_path), "%s/cryo-filemap-priv.dat", dir);
	snprintf(shared_path, sizeof(shared_path), "%s/cryo-filemap-shared.dat", dir);
	make_file(priv_path);
	make_file(shared_path);
	priv = map_file(priv_path, MAP_PRIVATE);
	shared = map_file(shared_path, MAP_SHARED);
	for (int p = 0; p < NP; p++)	/* read every page once: all resident */
		T_CHECK(same(priv + p * PAGE, p, 0) && same(shared + p * PAGE, p, 0), "page %d", p);
	printf("two files of %d pages mapped, private and shared\n", NP);

	for (int k = 1; k <= 3; k++) {
		/* write private pages k, k+4, ... through the mapping */
		for (int p = k; p < NP; p += 4) {
			fill(priv + p * PAGE, p, 10 * k);
			mtag[p] = 10 * k;
			dirty[p] = 1;
		}
		/* and shared pages 2k, 2k+1 */
		for (int p = 2 * k; p < 2 * k + 2; p++) {
			fill(shared + p * PAGE, p, 20 * k);
			stag[p] = 20 * k;
		}

		t_ready(k);

		for (int p = 0; p < NP; p++) {
			int want = dirty[p] ? mtag[p] : ftag[p];

			T_CHECK(same(priv + p * PAGE, p, want), "READY %d: private page %d (%s)", k, p,
				dirty[p] ? "written through the mapping" : "from the file");
			file_page(shared_path, p, buf, 0);
			T_CHECK(same(buf, p, stag[p]), "READY %d: shared.dat page %d on disk", k, p);
			T_CHECK(memcmp(buf, shared + p * PAGE, PAGE) == 0,
				"READY %d: shared mapping and file differ at page %d", k, p);
		}
		printf("READY %d: private pages kept, shared mapping matches the file\n", k);

		/* the file changes under the private mapping: clean pages follow */
		for (int p = 0; p < NP; p += 2) {
			ftag[p] = 100 + k;
			fill(buf, p, ftag[p]);
			file_page(priv_path, p, buf, 1);
		}
		for (int p = 0; p < NP; p++) {
			int want = dirty[p] ? mtag[p] : ftag[p];

			T_CHECK(same(priv + p * PAGE, p, want),
				"READY %d: private page %d after pwrite to the file (%s)", k, p,
				dirty[p] ? "written page must not change" : "clean page must follow the file");
		}
		printf("READY %d: clean private pages follow the file, written ones do not\n", k);

		/* both directions through the shared mapping */
		fill(shared + 15 * PAGE, 15, 40 + k);
		T_CHECK(msync(shared, NP * PAGE, MS_SYNC) == 0, "msync");
		file_page(shared_path, 15, buf, 0);
		T_CHECK(same(buf, 15, 40 + k), "READY %d: mapping write not in the file", k);
		fill(buf, 14, 50 + k);
		file_page(shared_path, 14, buf, 1);
		T_CHECK(same(shared + 14 * PAGE, 14, 50 + k), "READY %d: file write not in the mapping", k);
		stag[15] = 40 + k;
		stag[14] = 50 + k;
		printf("READY %d: shared writes visible both ways\n", k);
	}
	munmap(priv, NP * PAGE);
	munmap(shared, NP * PAGE);
	unlink(priv_path);
	unlink(shared_path);
	t_pass();
}
