"""The shared cache's store: Redis (HOTNET_CACHE_URL), which a Redis outage does not take down.

What is cached (pick lists, places, the filters' panels, dashboard figures) is only ever a
copy of what the database holds. So while Redis cannot be reached every call answers as an
empty cache would — a read finds nothing, a write or a deletion does nothing — and each page
is made from the database as usual, only a little slower. The outage is logged when it begins
and when it ends; for OUTAGE_SECONDS after a failure Redis is not asked again (a page does not
wait on a dead server at every fragment), then it is tried again. A server that does not answer
at all is given up after TIMEOUT_SECONDS.

A deletion that could not reach Redis (a category renamed during the outage) leaves the old
copy there until it expires: at most CACHE_DEFAULT_TIMEOUT seconds (HOTNET_STATS_CACHE_SECONDS)
after it was made.
"""
from __future__ import annotations

import logging
import threading
import time

import redis
from flask_caching.backends.rediscache import RedisCache

log = logging.getLogger("hotnet.cache")

OUTAGE_SECONDS = 10.0
TIMEOUT_SECONDS = 1.0


class FailSafeRedisCache(RedisCache):
    """Flask-Caching's RedisCache, answering as an empty cache while Redis is unreachable."""

    @classmethod
    def factory(cls, app, config, args, kwargs):
        client = redis.from_url(config["CACHE_REDIS_URL"], socket_timeout=TIMEOUT_SECONDS,
                                socket_connect_timeout=TIMEOUT_SECONDS)
        return cls(client, *args, key_prefix=config.get("CACHE_KEY_PREFIX") or None, **kwargs)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._down_until = 0.0  # time.monotonic() before which Redis is not asked
        self._down = False

    def _failed(self, exc: redis.RedisError) -> None:
        with self._lock:
            self._down_until = time.monotonic() + OUTAGE_SECONDS
            began, self._down = not self._down, True
        if began:
            log.warning("the shared cache (Redis) cannot be reached: pages are made from the "
                        "database until it is back (%s: %s)", type(exc).__name__, exc)

    def _answered(self) -> None:
        if self._down:
            with self._lock:
                ended, self._down = self._down, False
            if ended:
                log.warning("the shared cache (Redis) can be reached again")


def _guarded(name: str, empty):
    """RedisCache's `name`, answering `empty(args)` when Redis cannot be reached."""
    unguarded = getattr(RedisCache, name)

    def method(self, *args, **kwargs):
        if self._down and time.monotonic() < self._down_until:
            return empty(args)
        try:
            answer = unguarded(self, *args, **kwargs)
        except redis.RedisError as exc:
            self._failed(exc)
            return empty(args)
        self._answered()
        return answer

    method.__name__ = method.__qualname__ = name
    method.__doc__ = unguarded.__doc__
    return method


# What an empty cache answers to each call.
for _name, _empty in (("get", lambda args: None), ("get_many", lambda keys: [None] * len(keys)),
                      ("has", lambda args: False), ("set", lambda args: False),
                      ("add", lambda args: False), ("set_many", lambda args: []),
                      ("delete", lambda args: False), ("delete_many", lambda keys: []),
                      ("unlink", lambda keys: 0), ("clear", lambda args: False),
                      ("inc", lambda args: None), ("dec", lambda args: None)):
    setattr(FailSafeRedisCache, _name, _guarded(_name, _empty))
