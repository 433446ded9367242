#!/usr/bin/python3
"""pool.py: multiprocessing.Pool(2) mapping a function over lists, for
test/integration/programs-python.sh, which checkpoints it at random lines.

Usage: pool.py [BATCHES [ITEMS_PER_BATCH]]

A pool of two worker processes (forked, with the pool's pipes, locks and
handler threads) maps work() over one list per batch; the results come
back in order and are printed one line per batch, "N text" with N
counting 1, 2, 3..., each line one write(2). Every result is a pure
function of its argument, so the output depends only on the arguments.
At the end the pool is closed and joined and the workers must have exited
with status 0."""
import multiprocessing
import sys


def work(x):
    """A few milliseconds of arithmetic, a pure function of x."""
    s = x
    for i in range(20000 + (x * 37) % 1000):
        s = (s * 31 + i * x + 7) % 1000000007
    return s


def say(n, text):
    sys.stdout.write("%d %s\n" % (n, text))
    sys.stdout.flush()


def main():
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    n = 0
    pool = multiprocessing.Pool(2)
    workers = list(pool._pool)
    for b in range(batches):
        items = list(range(b * per, (b + 1) * per))
        res = pool.map(work, items)
        n += 1
        say(n, "batch %d: %d results, sum %d, first %d, last %d"
            % (b, len(res), sum(res) % 1000000007, res[0], res[-1]))
    pool.close()
    pool.join()
    codes = [w.exitcode for w in workers]
    say(n + 1, "pool joined, worker exit codes %s" % codes)
    if codes != [0, 0]:
        sys.exit(1)


if __name__ == "__main__":
    main()
