# sockext.py PORT FLAG: a client of a TCP server outside the computation
# (test/integration/sockext.sh). It says hello, prints the echo, prints
# READY, waits until the file FLAG exists (the test checkpoints, kills and
# restarts it meanwhile), then uses the connection again and prints whether
# it is still open, and "alive" at the end: after a restart the connection
# must look closed (reset or end of file) and the program must run on.
import os
import socket
import sys
import time

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello\n")
print("echo", s.recv(100).decode().strip(), flush=True)
print("READY", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
try:
    s.sendall(b"again\n")
    data = s.recv(100)
    print("open" if data else "closed", flush=True)
except OSError as e:
    print("closed", flush=True)
print("alive", flush=True)
