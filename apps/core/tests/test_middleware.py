import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from apps.core.middleware import ClientAddressMiddleware


def remote_addr_seen(**headers) -> str:
    seen = {}

    def view(request):
        seen["address"] = request.META["REMOTE_ADDR"]
        return HttpResponse()

    ClientAddressMiddleware(view)(RequestFactory().get("/", REMOTE_ADDR="172.18.0.5", **headers))
    return seen["address"]


@pytest.mark.parametrize("address", ["203.0.113.7", "2001:db8::1"])
def test_client_address_comes_from_nginxs_header(address):
    assert remote_addr_seen(HTTP_X_FORWARDED_FOR=address) == address


@pytest.mark.parametrize("header", [None, "", "not an address", "203.0.113.7, 10.0.0.1"])
def test_anything_but_one_address_leaves_the_peer_address(header):
    headers = {} if header is None else {"HTTP_X_FORWARDED_FOR": header}
    assert remote_addr_seen(**headers) == "172.18.0.5"
