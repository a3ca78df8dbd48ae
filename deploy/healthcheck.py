"""Docker health check for web and asgi: GET /healthz on this container's port.

    python deploy/healthcheck.py 8000

Exits 0 when the answer is 200, 1 otherwise (an error, a refused or silent
port: a traceback, and 1).

Docker runs this every 3 s in web and in each asgi replica for as long as they
run, so it imports nothing but the socket module: with urllib.request, whose
imports (http.client, email, ssl) the check never needs, each run cost about
58 ms of CPU in place of 22 (docs/performance.md). Python, because the slim
image has no curl.
"""

import socket
import sys

port = int(sys.argv[1])
with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
    # HTTP/1.0: the server closes the connection after its answer.
    connection.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    status_line = connection.makefile("rb").readline()  # b"HTTP/1.1 200 OK\r\n"
sys.exit(0 if status_line.split()[1:2] == [b"200"] else 1)
