/* Unit tests of the wire protocol helpers (coordinator/protocol.c): framing
 * over a socketpair (round trip, bad magic and version, oversized payload,
 * EOF in the middle, timeout), address parsing, and connecting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "coordinator/protocol.h"
#include "mtcp/util.h"

static int sp[2];

static int setup(void **state)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	return 0;
}

static int teardown(void **state)
{
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	return 0;
}

static void round_trip(void **state)
{
	struct coord_barrier b, got;
	struct coord_hdr hdr;

	memset(&b, 0, sizeof(b));
	b.phase = COORD_PH_WRITE;
	b.generation = 7;
	b.nprocs = 3;
	strcpy(b.text, "/tmp/ckpt");
	assert_int_equal(coord_send(sp[0], COORD_BARRIER, &b, sizeof(b)), 0);
	assert_int_equal(coord_send(sp[0], COORD_HELLO_CMD, NULL, 0), 0);
	assert_int_equal(coord_recv(sp[1], &hdr, &got, sizeof(got), 1000), 1);
	assert_int_equal(hdr.magic, COORD_MAGIC);
	assert_int_equal(hdr.type, COORD_BARRIER);
	assert_int_equal(hdr.version, COORD_PROTO_VERSION);
	assert_int_equal(hdr.len, sizeof(b));
	assert_memory_equal(&got, &b, sizeof(b));
	/* an empty message right behind it */
	assert_int_equal(coord_recv(sp[1], &hdr, &got, sizeof(got), 1000), 1);
	assert_int_equal(hdr.type, COORD_HELLO_CMD);
	assert_int_equal(hdr.len, 0);
}

static void largest_payload_passes(void **state)
{
	static char big[COORD_MSG_MAX], got[COORD_MSG_MAX];
	struct coord_hdr hdr;
	pid_t pid;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)i;
	/* bigger than the socket buffer may hold: send from a child */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(coord_send(sp[0], COORD_REPLY, big, sizeof(big)) == 0 ? 0 : 1);
	assert_int_equal(coord_recv(sp[1], &hdr, got, sizeof(got), 2000), 1);
	assert_int_equal(hdr.len, COORD_MSG_MAX);
	assert_memory_equal(got, big, sizeof(big));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void send_refuses_oversized(void **state)
{
	static char big[COORD_MSG_MAX + 1];

	errno = 0;
	assert_int_equal(coord_send(sp[0], COORD_REPLY, big, sizeof(big)), -1);
	assert_int_equal(errno, EMSGSIZE);
}

static void write_hdr(int fd, uint32_t magic, uint16_t version, uint32_t len)
{
	struct coord_hdr h = { .magic = magic, .type = COORD_REPLY, .version = version, .len = len };

	assert_int_equal(util_write_all(fd, &h, sizeof(h)), 0);
}

static void bad_magic(void **state)
{
	struct coord_hdr hdr;
	char buf[16];

	write_hdr(sp[0], 0xdeadbeef, COORD_PROTO_VERSION, 0);
	errno = 0;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 1000), -1);
	assert_int_equal(errno, EPROTO);
}

static void bad_version(void **state)
{
	struct coord_hdr hdr;
	char buf[16];

	write_hdr(sp[0], COORD_MAGIC, COORD_PROTO_VERSION + 1, 0);
	errno = 0;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 1000), -1);
	assert_int_equal(errno, EPROTO);
}

static void payload_larger_than_buffer(void **state)
{
	struct coord_hdr hdr;
	char buf[16], payload[32] = { 0 };

	assert_int_equal(coord_send(sp[0], COORD_REPLY, payload, sizeof(payload)), 0);
	errno = 0;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 1000), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(hdr.len, sizeof(payload));	/* the caller can see what came */
}

static void payload_larger_than_protocol(void **state)
{
	static char buf[COORD_MSG_MAX * 2];
	struct coord_hdr hdr;

	write_hdr(sp[0], COORD_MAGIC, COORD_PROTO_VERSION, COORD_MSG_MAX + 1);
	errno = 0;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 1000), -1);
	assert_int_equal(errno, EMSGSIZE);
}

static void orderly_eof(void **state)
{
	struct coord_hdr hdr;
	char buf[16];

	close(sp[0]);
	sp[0] = -1;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 1000), 0);
}

static void eof_inside_header(void **state)
{
	struct coord_hdr hdr;
	char buf[16];

	assert_int_equal(write(sp[0], "CRYC", 4), 4);
	close(sp[0]);
	sp[0] = -1;
	errno = 0;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 1000), -1);
	assert_int_equal(errno, ECONNRESET);
}

static void eof_inside_payload(void **state)
{
	struct coord_hdr hdr;
	char buf[64];

	write_hdr(sp[0], COORD_MAGIC, COORD_PROTO_VERSION, 40);
	assert_int_equal(write(sp[0], "0123456789", 10), 10);
	close(sp[0]);
	sp[0] = -1;
	errno = 0;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 1000), -1);
	assert_int_equal(errno, ECONNRESET);
}

static void timeout_with_nothing(void **state)
{
	struct coord_hdr hdr;
	char buf[16];
	uint64_t t0 = util_now_ns(1 /* CLOCK_MONOTONIC */), ms;

	errno = 0;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 50), -1);
	assert_int_equal(errno, ETIMEDOUT);
	ms = (util_now_ns(1) - t0) / 1000000;
	assert_true(ms >= 45 && ms < 1000);
}

static void timeout_inside_message(void **state)
{
	struct coord_hdr hdr;
	char buf[64];

	write_hdr(sp[0], COORD_MAGIC, COORD_PROTO_VERSION, 40);
	errno = 0;
	assert_int_equal(coord_recv(sp[1], &hdr, buf, sizeof(buf), 50), -1);
	assert_int_equal(errno, ETIMEDOUT);
}

static void send_to_closed_peer_fails(void **state)
{
	close(sp[1]);
	sp[1] = -1;
	/* no SIGPIPE (it would end this test): the application must survive */
	signal(SIGPIPE, SIG_DFL);
	errno = 0;
	assert_int_equal(coord_send(sp[0], COORD_HELLO_CMD, NULL, 0), -1);
	assert_int_equal(errno, EPIPE);
}

static void parse_addr_cases(void **state)
{
	char host[64];
	int port;

#define RESET() do { strcpy(host, "keep"); port = 1234; } while (0)
	RESET();
	assert_int_equal(coord_parse_addr("node7", host, sizeof(host), &port), 0);
	assert_string_equal(host, "node7");
	assert_int_equal(port, 1234);
	RESET();
	assert_int_equal(coord_parse_addr("node7:7791", host, sizeof(host), &port), 0);
	assert_string_equal(host, "node7");
	assert_int_equal(port, 7791);
	RESET();
	assert_int_equal(coord_parse_addr(":7792", host, sizeof(host), &port), 0);
	assert_string_equal(host, "keep");
	assert_int_equal(port, 7792);
	RESET();
	assert_int_equal(coord_parse_addr("7793", host, sizeof(host), &port), 0);
	assert_string_equal(host, "keep");
	assert_int_equal(port, 7793);
	RESET();
	assert_int_equal(coord_parse_addr("10.0.0.1:65535", host, sizeof(host), &port), 0);
	assert_string_equal(host, "10.0.0.1");
	assert_int_equal(port, 65535);
	RESET();
	assert_int_equal(coord_parse_addr("[::1]:7794", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 7794);
	RESET();
	assert_int_equal(coord_parse_addr("fe80::1", host, sizeof(host), &port), 0);
	assert_string_equal(host, "fe80::1");
	assert_int_equal(port, 1234);

	/* malformed: nothing changes */
	const char *bad[] = { "", "host:", "host:0", "host:65536", "host:12x", ":", "0",
			      "99999", "[::1", "[::1]x", "[]:80", "h:-1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		RESET();
		if (coord_parse_addr(bad[i], host, sizeof(host), &port) != -1)
			fail_msg("'%s' was accepted", bad[i]);
		assert_string_equal(host, "keep");
		assert_int_equal(port, 1234);
	}
	assert_int_equal(coord_parse_addr(NULL, host, sizeof(host), &port), -1);
	/* a host that does not fit */
	char small[4];
	assert_int_equal(coord_parse_addr("longhost", small, sizeof(small), &port), -1);
}

static void default_addr_from_env(void **state)
{
	char host[64];
	int port;

	unsetenv("CRYO_COORD_HOST");
	unsetenv("CRYO_COORD_PORT");
	coord_default_addr(host, sizeof(host), &port);
	assert_string_equal(host, COORD_DEFAULT_HOST);
	assert_int_equal(port, COORD_DEFAULT_PORT);
	setenv("CRYO_COORD_HOST", "node3", 1);
	setenv("CRYO_COORD_PORT", "7001", 1);
	coord_default_addr(host, sizeof(host), &port);
	assert_string_equal(host, "node3");
	assert_int_equal(port, 7001);
	setenv("CRYO_COORD_PORT", "nonsense", 1);
	coord_default_addr(host, sizeof(host), &port);
	assert_int_equal(port, COORD_DEFAULT_PORT);
	unsetenv("CRYO_COORD_HOST");
	unsetenv("CRYO_COORD_PORT");
}

static void connect_and_refused(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	socklen_t sl = sizeof(*in);
	int lfd, fd, afd;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)in, sizeof(*in)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)in, &sl), 0);

	fd = coord_connect(&ss, sl, 1000);
	assert_true(fd >= 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	assert_int_equal(coord_send(fd, COORD_HELLO_CMD, NULL, 0), 0);	/* blocking again */
	close(fd);
	close(afd);
	/* nobody listens any more: refused, quickly */
	close(lfd);
	errno = 0;
	assert_int_equal(coord_connect(&ss, sl, 1000), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(coord_open_cmd("127.0.0.1", ntohs(in->sin_port), 500), -1);
	assert_int_equal(coord_open_cmd("no-such-host.invalid", 7790, 500), -1);
}

static void resolve_cases(void **state)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	assert_int_equal(coord_resolve("127.0.0.1", 7790, &ss, &sl), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 7790);
	assert_int_equal(coord_resolve("no-such-host.invalid", 7790, &ss, &sl), -1);
}

static void ensure_refuses_remote_host(void **state)
{
	/* a non-local host with nothing there: one error line, no start */
	assert_int_equal(coord_ensure("192.0.2.1", 7790, "/nonexistent"), -1);
}

static void phase_names(void **state)
{
	assert_string_equal(coord_phase_name(COORD_PH_SUSPEND), "SUSPEND");
	assert_string_equal(coord_phase_name(COORD_PH_RESUME), "RESUME");
	assert_string_equal(coord_phase_name(COORD_PH_RESTART), "RESTART");
	assert_string_equal(coord_phase_name(99), "UNKNOWN");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(round_trip),
		T(largest_payload_passes),
		T(send_refuses_oversized),
		T(bad_magic),
		T(bad_version),
		T(payload_larger_than_buffer),
		T(payload_larger_than_protocol),
		T(orderly_eof),
		T(eof_inside_header),
		T(eof_inside_payload),
		T(timeout_with_nothing),
		T(timeout_inside_message),
		T(send_to_closed_peer_fails),
		cmocka_unit_test(parse_addr_cases),
		cmocka_unit_test(default_addr_from_env),
		cmocka_unit_test(connect_and_refused),
		cmocka_unit_test(resolve_cases),
		cmocka_unit_test(ensure_refuses_remote_host),
		cmocka_unit_test(phase_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
