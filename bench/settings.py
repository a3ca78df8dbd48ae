"""The project's production settings, for the stack under benchmark: the same
but for the chat's per-socket message limit, lifted so that scenario 5's echo
clients measure round trips through the channel layer rather than the "slow
down" reply (like nginx's per-client limits, see bench/unlimited-clients.conf).

Mounted into the app image as project.settings.bench by bench/compose.yml, for
the asgi service only; never used in production.
"""

from project.settings.production import *  # noqa: F403

CHAT_MESSAGES_PER_SECOND = 1_000_000
CHAT_MESSAGE_BURST = 1_000_000
