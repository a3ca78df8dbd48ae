"""The Redis caches, as the settings configure them, on the stack's Redis."""

import json

from django.conf import settings
from django.core.cache import caches


def test_the_caches_keep_json_never_pickle():
    # What is read back from Redis is parsed as JSON, never unpickled: unpickling
    # runs whatever code the bytes name, so anyone who can write to Redis could
    # run code in every web and asgi process.
    for alias in settings.CACHES:
        cache = caches[alias]
        cache.set("caches-test", {"data": {"n": 1}}, timeout=10)
        stored = cache.client.get_client().get(cache.make_key("caches-test"))
        assert json.loads(stored) == {"data": {"n": 1}}, alias
        cache.delete("caches-test")
