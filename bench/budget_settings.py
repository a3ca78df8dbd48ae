"""Scenario 13's Daphne: the benchmark's settings (bench/settings.py) with
production's per-client WebSocket message budget back. bench/settings.py lifts
it so that the echo and broadcast clients measure the channel layer; the flood
of scenario 13 must meet the budget as a flood in production would.

Mounted into the app image as project.settings.bench_budget by
bench/compose.yml, for the asgi-flood service only; never used in production.
"""

from project.settings.bench import *  # noqa: F403

from project.settings import production

WEBSOCKET_MESSAGES_PER_SECOND = production.WEBSOCKET_MESSAGES_PER_SECOND
WEBSOCKET_MESSAGE_BURST = production.WEBSOCKET_MESSAGE_BURST
