/* ptyshell: a pty master driving a shell on the slave, across checkpoints.
 *
 * The parent opens a pty (posix_openpt), sets its window to 40x100 and
 * starts /bin/sh in a new session whose controlling terminal is the slave.
 * The first command turns echo off (stty -echo). Each phase the parent
 * sends commands and prints what comes back (without the \r the terminal
 * adds): the window size, the echo setting, whether the shell still has a
 * controlling terminal (opening /dev/tty), a computed marker. So a restart
 * that lost the pty, its modes, its size or the controlling terminal shows
 * in the output. At the end "exit 3"; the parent checks the status. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

static int master;

static void send(const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t w = write(master, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			t_fail("write to the master: %s", strerror(errno));
		s += w;
		n -= (size_t)w;
	}
}

/* Prints lines from the master until one equals end. */
static void collect(const char *end)
{
	static char buf[8192];
	static size_t have;

	for (;;) {
		char *nl;

		while ((nl = memchr(buf, '\n', have))) {
			size_t len = (size_t)(nl - buf) + 1;
			char line[8192];
			size_t k = 0;

			for (size_t i = 0; i < len - 1; i++)
				if (buf[i] != '\r')
					line[k++] = buf[i];
			line[k] = '\0';
			memmove(buf, nl + 1, have - len);
			have -= len;
			printf("  | %s\n", line);
			if (!strcmp(line, end))
				return;
		}
		ssize_t r = read(master, buf + have, sizeof(buf) - have);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			t_fail("read from the master: %zd %s", r, strerror(errno));
		have += (size_t)r;
	}
}

int main(int argc, char **argv)
{
	struct winsize ws = { .ws_row = 40, .ws_col = 100 };
	char cmd[512], end[32];
	int status;
	pid_t c;

	t_init(argc, argv);
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
		t_fail("posix_openpt: %s", strerror(errno));
	if (ioctl(master, TIOCSWINSZ, &ws) < 0)
		t_fail("TIOCSWINSZ");
	c = fork();
	if (c < 0)
		t_fail("fork");
	if (c == 0) {
		const char *name = ptsname(master);
		int s;

		setsid();
		s = name ? open(name, O_RDWR) : -1;	/* becomes the controlling terminal */
		if (s < 0)
			_exit(120);
		dup2(s, 0);
		dup2(s, 1);
		dup2(s, 2);
		if (s > 2)
			close(s);
		close(master);
		setenv("PS1", "", 1);	/* interactive on a tty: no prompt */
		execl("/bin/sh", "sh", (char *)NULL);
		_exit(121);
	}
	send("stty -echo; echo READY\n");
	collect("READY");
	for (int k = 1; k <= 4; k++) {
		snprintf(cmd, sizeof(cmd),
			 "stty size; stty -a | grep -o ' -echo '; "
			 "if (: </dev/tty) 2>/dev/null; then echo ctty; else echo no ctty; fi; "
			 "echo DONE$((%d * 7))\n", k);
		snprintf(end, sizeof(end), "DONE%d", k * 7);
		printf("phase %d\n", k);
		send(cmd);
		collect(end);
		if (k < 4) {
			fflush(stdout);
			t_ready(k);
		}
	}
	send("exit 3\n");
	if (waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 3)
		t_fail("shell status %#x", status);
	printf("shell exited 3\n");
	t_pass();
}
