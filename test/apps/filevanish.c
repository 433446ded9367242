/* filevanish: files that vanish or change while the program is
 * checkpointed, and the stdio policy; driven by test/integration/files.sh.
 * It opens DIR/keep.txt, DIR/gone.txt and DIR/short.txt (argv[1]; the
 * script makes them, ten lines each), reads three lines of each, and at
 * each "@@READY k" (k = 1, 2, 3) waits; after each it reads one more line of
 * each and prints what it got: the line, "EOF", or the error (a vanished
 * file's fd is left closed after a restart: "Bad file descriptor"). */
#include "../lib/harness.h"
#include <fcntl.h>

static const char *const names[3] = { "keep", "gone", "short" };
static int fds[3];

static void line_of(int i)
{
	char line[128];
	size_t len = 0;

	while (len < sizeof(line) - 1) {
		ssize_t r = read(fds[i], line + len, 1);

		if (r < 0) {
			printf("%s: %s\n", names[i], strerror(errno));
			return;
		}
		if (r == 0) {
			printf("%s: EOF\n", names[i]);
			return;
		}
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	printf("%s: %s", names[i], line);
}

int main(int argc, char **argv)
{
	char path[4200];

	t_init(argc, argv);
	T_CHECK(argc > 1, "usage: filevanish DIR");
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s.txt", argv[1], names[i]);
		fds[i] = open(path, O_RDONLY);
		T_CHECK(fds[i] >= 0, "open %s: %s", path, strerror(errno));
		for (int l = 0; l < 3; l++)
			line_of(i);
	}
	for (int k = 1; k <= 3; k++) {
		t_ready(k);
		printf("after READY %d:\n", k);
		for (int i = 0; i < 3; i++)
			line_of(i);
	}
	printf("done\n");
	return 0;
}
