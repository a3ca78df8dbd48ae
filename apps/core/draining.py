"""A server that is stopping drains first (deploy/run-draining.sh): it marks
itself with DRAIN_MARKER, readiness fails, new WebSockets are refused, and the
open ones are asked to reconnect elsewhere."""

import socket
from pathlib import Path

# The one spelling of the path: deploy/run-draining.sh asks this module for it.
DRAIN_MARKER = Path("/tmp/draining")  # noqa: S108 (a tmpfs of this container's own)

# "Service restart: reconnect, perhaps to another server": RFC 6455's 1012, as
# 4012, since Daphne lets an application close only with 1000 or 3000-4999.
CLOSE_SERVICE_RESTART = 4012


def is_draining() -> bool:
    return DRAIN_MARKER.exists()


def server_group() -> str:
    """The channel-layer group of every WebSocket open on this container (its
    host name is unique in Docker and Kubernetes alike)."""
    return f"server_{socket.gethostname()}"
