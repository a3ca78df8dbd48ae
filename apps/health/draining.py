"""A server that is stopping drains first (deploy/run-draining.sh): it marks
itself with DRAIN_MARKER, readiness fails, new WebSockets are refused, and the
open ones are asked to reconnect elsewhere."""

import socket
from pathlib import Path

DRAIN_MARKER = Path("/tmp/draining")  # noqa: S108 (a tmpfs of this container's own)

# RFC 6455's "service restart": reconnect, perhaps to another server.
CLOSE_SERVICE_RESTART = 1012


def is_draining() -> bool:
    return DRAIN_MARKER.exists()


def server_group() -> str:
    """The channel-layer group of every WebSocket open on this container (its
    host name is unique in Docker and Kubernetes alike)."""
    return f"server_{socket.gethostname()}"
