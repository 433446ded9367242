#!/usr/bin/python3
"""count.py: prints 0..N-1, one number per line, flushed, with a short
sleep after each. test/integration/run.sh --count N checkpoints it at
random moments and checks that the restarted interpreter carries on where
the image was taken. Usage: count.py [N [SECONDS_PER_LINE]]"""
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.02
for i in range(n):
    sys.stdout.write("%d\n" % i)  # one write(2) per line: no partial lines
    sys.stdout.flush()
    time.sleep(delay)
