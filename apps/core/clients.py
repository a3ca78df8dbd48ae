"""Who a client is, for the limits kept per client: failed logins
(apps/core/logins.py) and WebSocket messages (apps/core/websocket_budget.py)."""

import ipaddress

# One IPv6 client (a home, a phone, a server) is usually given a whole /64, and
# can use any of its 2**64 addresses: counted one by one, they would never run
# out of tries.
IPV6_CLIENT_PREFIX = 64


def client_network(address: str | None) -> str | None:
    """The address a client's limits are counted against: an IPv4 address as
    it is (also when written as IPv6, ::ffff:a.b.c.d); for IPv6, the first
    address of its /64, which then stands for all of them. None when there is
    no address (a Unix socket, a test client that gives none)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False)[0])
    return str(ip)
