"""The project's production settings, for the stack under benchmark: the same,
plus the benchmark's pages (bench/app/, mounted as apps.bench), and with the
per-socket WebSocket message budget lifted so that the echo and broadcast
clients measure round trips through the channel layer rather than the "slow
down" reply (like nginx's per-client limits, see bench/unlimited-clients.conf).

Mounted into the app image as project.settings.bench by bench/compose.yml;
never used in production.
"""

from project.settings.production import *  # noqa: F403
from project.settings.production import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "apps.bench"]
ROOT_URLCONF = "apps.bench.urls"

WEBSOCKET_MESSAGES_PER_SECOND = 1_000_000
WEBSOCKET_MESSAGE_BURST = 1_000_000
