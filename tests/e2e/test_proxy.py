"""What nginx passes on to the apps, and what its micro-cache keeps, seen from
the other side: a second nginx from the stack's own image, on a network of its
own where the names `web` and `asgi` are a stand-in upstream that answers every
request with the headers it got.

Why a stand-in rather than the stack's Gunicorn and Daphne: the apps' logs
show only what they are set to show, and a debug endpoint in the app would
ship to every fork. The stand-in sees exactly the request nginx sends, for
HTTP and for /ws/, and lets the tests choose the Cache-Control of each answer,
without any page of the product's being public.
"""

import ipaddress
import random
import re
import socket
import uuid

import pytest
import requests

from apps.core.clients import IPV6_CLIENT_PREFIX
from tests.stack import wait_until

pytestmark = pytest.mark.e2e

# The stand-in: every request on 8000 (web) and 8001 (asgi) gets a JSON body
# with its headers, the port it came to and a number that no other answer has;
# the query string's `cache-control` is the answer's Cache-Control.
UPSTREAM = """
import itertools, json, threading, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

answers = itertools.count()

class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        body = json.dumps({
            "answer": next(answers),
            "port": self.server.server_port,
            "headers": {name.lower(): value for name, value in self.headers.items()},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for value in query.get("cache-control", []):
            self.send_header("Cache-Control", value)
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

for port in (8000, 8001):
    server = ThreadingHTTPServer(("0.0.0.0", port), Echo)
    threading.Thread(target=server.serve_forever).start()
"""


@pytest.fixture(scope="module")
def second_nginx(stack):
    """(start, this container's address there): start(environment) runs a
    second nginx from the stack's image, with `environment` added to its own,
    in front of the stand-in, and returns get(path, **requests options), which
    sends a GET to it as the stack's tests do (Host localhost:8000) and
    returns what the stand-in saw, as a dict."""
    network = stack.docker.networks.create(f"{stack.project}-proxy-{uuid.uuid4().hex[:8]}")
    me = stack.docker.containers.get(socket.gethostname())
    started = []
    try:
        upstream = stack.docker.containers.run(
            stack.containers("web")[0].image,
            ["python", "-c", UPSTREAM],
            detach=True,
            network=network.name,
            cap_drop=["ALL"],
        )
        started.append(upstream)
        # The stand-in answers to both names (a network alias per name).
        network.disconnect(upstream)
        network.connect(upstream, aliases=["web", "asgi"])
        network.connect(me)
        me.reload()
        my_address = me.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        upstream.reload()
        upstream_address = upstream.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        wait_until(
            lambda: requests.get(f"http://{upstream_address}:8000/", timeout=2).ok,
            timeout=30,
            what="the stand-in upstream answering",
        )

        def start(environment: dict):
            nginx = stack.docker.containers.run(
                stack.containers("nginx")[0].image,
                detach=True,
                environment={"DJANGO_ALLOWED_HOSTS": "localhost", **environment},
                network=network.name,
                cap_drop=["ALL"],
                tmpfs={"/tmp": ""},
                read_only=True,
            )
            started.append(nginx)
            nginx.reload()
            address = nginx.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]

            def get(path, **options):
                headers = {"Host": "localhost:8000", **options.pop("headers", {})}
                response = requests.get(
                    f"http://{address}:8080{path}", headers=headers, timeout=10, **options
                )
                assert response.status_code == 200, (response.status_code, response.text)
                return response.json()

            get.url = f"http://{address}:8080"
            wait_until(
                lambda: requests.get(f"http://{address}:8081/healthz", timeout=2).ok,
                timeout=30,
                what="the nginx under test answering",
            )
            # And reaching the stand-in by both its names: nginx looks asgi
            # up at each request, and Docker's DNS may answer for an alias
            # only a moment after it was added (web's list, made by the
            # follower, waits for it already).
            wait_until(
                lambda: get("/ws/ping/") and get("/"),
                timeout=30,
                what="the nginx under test reaching the stand-in as asgi and as web",
            )
            return get

        yield start, my_address
    finally:
        for container in started:
            container.remove(force=True)
        network.disconnect(me)
        network.remove()


@pytest.fixture(scope="module")
def proxy(second_nginx):
    """(get, this container's address there), nginx as the stack runs it: the edge."""
    start, my_address = second_nginx
    return start({}), my_address


# --- Forwarding headers ---------------------------------------------------------

FORGED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "443",
    "Forwarded": "for=203.0.113.7;host=evil.example;proto=https",
    "X-Real-IP": "203.0.113.7",
}


@pytest.mark.parametrize("path", ["/admin/login/", "/ws/ping/"], ids=["gunicorn", "daphne"])
def test_no_client_forwarding_header_reaches_the_apps(proxy, path):
    get, my_address = proxy
    seen = get(path, headers=FORGED)
    assert seen["port"] == (8001 if path.startswith("/ws/") else 8000)
    headers = seen["headers"]
    # What nginx itself says: the peer it saw, plain HTTP, the client's Host.
    assert headers["x-forwarded-for"] == my_address
    assert headers["x-forwarded-proto"] == "http"
    assert headers["host"] == "localhost:8000"
    for name in ("x-forwarded-host", "x-forwarded-port", "forwarded", "x-real-ip"):
        assert name not in headers, f"{name}: {headers[name]}"


@pytest.mark.parametrize("path", ["/admin/login/", "/ws/ping/"], ids=["gunicorn", "daphne"])
def test_a_trusted_proxy_s_client_address_and_scheme_reach_the_apps(second_nginx, path):
    # As behind a Kubernetes Ingress that ends TLS: this container is the
    # proxy, and says which browser it serves and that it came over HTTPS.
    start, my_address = second_nginx
    get = start({"NGINX_TRUSTED_PROXIES": f"192.0.2.0/24,{my_address}/32"})
    headers = get(path, headers=FORGED)["headers"]
    assert headers["x-forwarded-for"] == "203.0.113.7"
    assert headers["x-forwarded-proto"] == "https"
    # A chain: the browser is the last address, the one the proxy added,
    # even in a trusted range (a VPN client's); what the client wrote before
    # it is never believed.
    chained = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 192.0.2.9"}
    assert get(path, headers=chained)["headers"]["x-forwarded-for"] == "192.0.2.9"
    # Only its forwarding headers are believed; the rest are dropped still.
    for name in ("x-forwarded-host", "x-forwarded-port", "forwarded", "x-real-ip"):
        assert name not in headers, f"{name}: {headers[name]}"


def test_a_proxy_not_listed_is_not_believed(second_nginx):
    start, my_address = second_nginx
    get = start({"NGINX_TRUSTED_PROXIES": "192.0.2.0/24"})
    headers = get("/admin/login/", headers=FORGED)["headers"]
    assert headers["x-forwarded-for"] == my_address
    assert headers["x-forwarded-proto"] == "http"


# --- One client: an IPv4 address, or an IPv6 /64 --------------------------------

# Networks of IPV6_CLIENT_PREFIX bits, written by nginx in each of the ways
# its $client map reads: four groups before "::", three, two, and one with
# "::" for groups 2 and 3 alone (2001::1:2:3:4:5).
IPV6_CLIENTS = ["2001:db8:1:2::", "2001:db8:1::", "2001:db8::", "2001:0:0:1::"]


def posts_until_refused(get, addresses) -> list[int]:
    """POST from each address in turn, as a trusted proxy says, back to back,
    until nginx refuses one (429) or every address has sent one."""
    statuses = []
    for address in addresses:
        statuses.append(
            requests.post(
                f"{get.url}/form/",
                headers={"Host": "localhost:8000", "X-Forwarded-For": address},
                timeout=10,
            ).status_code
        )
        if statuses[-1] == 429:
            break
    return statuses


@pytest.mark.parametrize("network", IPV6_CLIENTS)
def test_an_ipv6_client_is_its_network_as_the_apps_count_it(second_nginx, network):
    # nginx's limit on writes (5 a second, bursts of 10) holds for one client
    # sending from a new address of its network each time, as it would from
    # one address; addresses in other networks are other clients.
    start, my_address = second_nginx
    get = start({"NGINX_TRUSTED_PROXIES": f"{my_address}/32"})
    own = ipaddress.ip_network(f"{network}/{IPV6_CLIENT_PREFIX}")
    # The first address, the last, small ones and random ones: "::" falls
    # in different places in each.
    hosts = [0, 1, -1, 2**32 + 1] + [random.getrandbits(128) for _ in range(56)]
    statuses = posts_until_refused(get, [str(own[host % own.num_addresses]) for host in hosts])
    assert statuses[-1] == 429, f"{len(statuses)} writes from {own}, none refused"
    assert set(statuses) == {200, 429}, statuses
    # Its neighbours are clients of their own, one write each: none refused.
    step = own.num_addresses
    neighbours = [str(own.network_address + n * step + 1) for n in range(1, 40)]
    assert set(posts_until_refused(get, neighbours)) == {200}


# --- The request id ----------------------------------------------------------------

NGINX_ID = re.compile(r"[0-9a-f]{32}")  # $request_id


@pytest.mark.parametrize("path", ["/admin/login/", "/ws/ping/"], ids=["gunicorn", "daphne"])
def test_the_apps_get_nginx_s_request_id_not_a_client_s(proxy, path):
    get, _ = proxy
    assert NGINX_ID.fullmatch(get(path)["headers"]["x-request-id"])
    sent = get(path, headers={"X-Request-ID": "forged-by-a-client"})["headers"]["x-request-id"]
    assert NGINX_ID.fullmatch(sent), sent


@pytest.mark.parametrize("path", ["/admin/login/", "/ws/ping/"], ids=["gunicorn", "daphne"])
def test_a_trusted_proxy_s_request_id_is_kept(second_nginx, path):
    start, my_address = second_nginx
    get = start({"NGINX_TRUSTED_PROXIES": f"{my_address}/32"})
    # An id of the proxy's own making (a UUID, as many load balancers give).
    theirs = f"lb-{uuid.uuid4()}"
    assert get(path, headers={"X-Request-ID": theirs})["headers"]["x-request-id"] == theirs
    # Not the shape of an id (spaces, quotes, too long): nginx's own instead.
    for odd in ("a b", 'a"b', "x" * 129):
        sent = get(path, headers={"X-Request-ID": odd})["headers"]["x-request-id"]
        assert NGINX_ID.fullmatch(sent), (odd, sent)


# --- The micro-cache --------------------------------------------------------------

PUBLIC = "cache-control=public,max-age=60"


def fresh_path(cache_control: str = PUBLIC) -> str:
    return f"/page/{uuid.uuid4().hex}?{cache_control}"


def test_a_public_answer_is_cached(proxy):
    get, _ = proxy
    path = fresh_path()
    assert get(path)["answer"] == get(path)["answer"]


def test_an_answer_not_marked_public_is_not_cached(proxy):
    get, _ = proxy
    for cache_control in ("cache-control=max-age=60", "cache-control=private,max-age=60", ""):
        path = fresh_path(cache_control)
        assert get(path)["answer"] != get(path)["answer"], cache_control


KNOWN_VISITORS = {
    "session": {"Cookie": "sessionid=abc"},
    "session-among-others": {"Cookie": "other=1; sessionid=abc"},
    "csrf": {"Cookie": "csrftoken=abc"},
    "authorization": {"Authorization": "Bearer abc"},
}


@pytest.mark.parametrize("credentials", KNOWN_VISITORS.values(), ids=KNOWN_VISITORS.keys())
def test_a_known_visitor_is_never_served_from_the_cache_nor_stored(proxy, credentials):
    get, _ = proxy
    # Not stored: what a known visitor was answered never reaches anyone else.
    path = fresh_path()
    theirs = get(path, headers=credentials)
    assert get(path)["answer"] != theirs["answer"]
    # Not served: an anonymous visitor's cached answer never reaches them.
    anonymous = get(path)["answer"]
    assert get(path)["answer"] == anonymous  # (it is cached)
    assert get(path, headers=credentials)["answer"] != anonymous


def test_the_cache_key_holds_the_port_django_is_told(proxy):
    get, _ = proxy
    # A page built for the Host a client sent (say, absolute URLs with its
    # port) is never served to those who asked with another.
    path = fresh_path()
    forged = get(path, headers={"Host": "localhost:6666"})
    assert forged["headers"]["host"] == "localhost:6666"
    assert get(path)["headers"]["host"] == "localhost:8000"
    # ... while those who ask alike share it.
    assert get(path)["answer"] == get(path)["answer"]
