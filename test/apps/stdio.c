/* stdio: FILE streams across checkpoint/restart. Open across all cycles:
 * a stream writing to /dev/null, a fully buffered stream writing a file in
 * the work directory (argv[1], else $TMPDIR, else /tmp) with data still in
 * its buffer at each checkpoint, and a stream reading another file part by
 * part (its buffer and the file offset must agree after the restart). At
 * the end the written file is read back and compared line by line, and
 * stdin (/dev/null) still reads EOF. */
#include "../lib/harness.h"

#define LINES 300

static char wpath[4200], rpath[4200];

int main(int argc, char **argv)
{
	FILE *null, *w, *r;
	static char wbuf[65536];
	char line[128], want[128];
	int next_read = 0, next_write = 0;

	t_init(argc, argv);
	snprintf(wpath, sizeof(wpath), "%s/cryo-stdio-out.txt", t_workdir(argc, argv, 1));
	snprintf(rpath, sizeof(rpath), "%s/cryo-stdio-in.txt", t_workdir(argc, argv, 1));

	r = fopen(rpath, "w");
	T_CHECK(r != NULL, "create %s: %s", rpath, strerror(errno));
	for (int i = 0; i < 4 * LINES; i++)
		fprintf(r, "input line %d\n", i);
	T_CHECK(fclose(r) == 0, "close input");

	null = fopen("/dev/null", "w");
	w = fopen(wpath, "w");
	r = fopen(rpath, "r");
	T_CHECK(null && w && r, "fopen: %s", strerror(errno));
	T_CHECK(setvbuf(w, wbuf, _IOFBF, sizeof(wbuf)) == 0, "setvbuf");
	printf("streams open: /dev/null, an output file, an input file\n");

	for (int k = 1; k <= 4; k++) {
		/* write a batch, the end of it left in the buffer */
		for (int i = 0; i < LINES; i++, next_write++) {
			fprintf(w, "output line %d\n", next_write);
			fprintf(null, "discarded %d\n", next_write);
			if (i == LINES / 2)
				fflush(w);
		}
		/* read a batch */
		for (int i = 0; i < LINES; i++, next_read++) {
			T_CHECK(fgets(line, sizeof(line), r) != NULL, "read line %d: eof or error", next_read);
			snprintf(want, sizeof(want), "input line %d\n", next_read);
			T_CHECK(strcmp(line, want) == 0, "read '%s', want '%s'", line, want);
		}
		if (k == 4)
			break;
		t_ready(k);
		T_CHECK(!ferror(w) && !ferror(null) && !ferror(r) && !feof(r), "READY %d: stream error", k);
		printf("READY %d: %d lines written, %d read, streams fine\n", k, next_write, next_read);
	}
	T_CHECK(fgets(line, sizeof(line), r) == NULL && feof(r), "input has more lines than written");
	T_CHECK(fclose(r) == 0 && fclose(null) == 0, "fclose");
	T_CHECK(fclose(w) == 0, "fclose output: %s", strerror(errno));

	r = fopen(wpath, "r");
	T_CHECK(r != NULL, "reopen %s", wpath);
	for (int i = 0; i < next_write; i++) {
		snprintf(want, sizeof(want), "output line %d\n", i);
		T_CHECK(fgets(line, sizeof(line), r) && strcmp(line, want) == 0,
			"output file line %d is wrong", i);
	}
	T_CHECK(fgets(line, sizeof(line), r) == NULL, "output file has extra data");
	fclose(r);
	T_CHECK(getchar() == EOF, "stdin is not at EOF");
	printf("output file complete: %d lines\n", next_write);
	unlink(wpath);
	unlink(rpath);
	t_pass();
}
