"""Docker health check for web and asgi: GET /healthz on this container's port.

    python deploy/healthcheck.py 8000

Python, because the slim image has no curl.
"""

import sys
import urllib.request

port = int(sys.argv[1])
with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
    sys.exit(0 if response.status == 200 else 1)
