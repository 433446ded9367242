# Test programs: test/apps/<name>.c -> build/test/apps/<name> (`make test-apps`).
# Each includes test/lib/harness.h; see test/integration/run.sh for how they
# are driven and test/run-all.sh for the list that `make check` runs.
TEST_APPS += counter threads signals bigmem filemap recursion tls zeropages mremap \
             gettimeofday clock dlopen stdio membench ticker
TEST_APPS += corethreads forktree forkwait pidloop pipes shmem ptyshell
TEST_APPS += eventfds epoll inotify ptimer eventshare unixpair
TEST_APPS += pidchain spawntree pgroup
TEST_APPS += fileappend filedeleted filedev filestdio fileshare filevanish
TEST_APPS += tcpflow
TEST_APPS += pipeline popen waitblock zombies
TEST_APPS += incrmem dirtybench
TEST_APPS += cowwait cowtick

# The rule builds each program from its one .c; the harness is a header.
$(addprefix build/test/apps/,$(TEST_APPS)): test/lib/harness.h
