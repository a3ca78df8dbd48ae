"""Scenario 13's flooder, in a container of its own that bench/run.py starts
(flood_compare) with a CPU limit: one client flooding one Daphne replica
(loads.flood) until SIGTERM, then its counts as one line of JSON.

    python flood.py <host> <port> <sockets>
"""

import asyncio
import json
import signal
import sys
from dataclasses import asdict

import loads


async def main(host: str, port: int, lanes: int) -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    print("flooding", flush=True)
    found = await loads.flood((host, port), lanes=lanes, stopping=stopping)
    print(json.dumps(asdict(found)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
