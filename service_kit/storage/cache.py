"""The shared cache, chosen by URL: Redis when REDIS_URL is set (Flask-Caching's RedisCache
backend), otherwise Flask-Caching's file-system cache under var/cache/<service>, which every
process of the service shares, so an invalidation by the worker reaches the web processes.

Redis may be one server (`redis://`, `rediss://`, `unix://`), a Sentinel-watched primary
(`redis+sentinel://[:password@]host:port[,host:port…]/<primary name>[/<db>]`: reads and writes
go to the current primary, as a replica could still hold an entry the worker just invalidated)
or a Cluster (`redis+cluster://[:password@]host:port[,host:port…]`: a service's keys share one
hash slot, as the list cache reads a page and its version in one MGET).

Values are stored as exact JSON (service_kit/exact_json.py), never pickled: whoever can write to
Redis or to the cache folder could otherwise run code in every process that reads it. What does
not parse is a miss, logged. JSON keeps a value's text, not its Python type: a datetime comes
back as the RFC 3339 text it is written as, so readers rebuild any richer type themselves.

A cache failure is never an error for the caller: operations time out quickly, the failure is
logged, the cache is skipped for a few seconds (reads go to the database), then tried again."""

import logging
import threading
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

import redis
import redis.cluster
from flask_caching.backends import FileSystemCache, RedisCache

from service_kit import exact_json
from service_kit.config import CLUSTER, SENTINEL, read_redis_address, sentinel_primary

_log = logging.getLogger(__name__)
_PAUSE_AFTER_FAILURE_S = 3.0
# Connections per process, and how long a request waits for one: redis-py's default pool
# raises at once past 100 connections, and a gevent worker serves more requests than that at a
# time, so under load the cache looked failed and reads went to the database, which made the
# load worse.
_MAX_CONNECTIONS = 100
_WAIT_FOR_CONNECTION_S = 1.0
T = TypeVar("T")


_SOCKET_TIMEOUTS = {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}


def open_cache(redis_url: str | None, *, namespace: str, file_dir: str) -> "SafeCache":
    if redis_url:
        client, prefix = _redis_client(redis_url, namespace)
        backend: Any = JsonRedisCache(host=client, key_prefix=prefix)
        return SafeCache(backend, ping=client.ping, describe=f"redis ({namespace})")
    backend = JsonFileSystemCache(file_dir, threshold=10_000)
    return SafeCache(backend, ping=lambda: backend.get("__ping__"), describe=f"files {file_dir}")


def _redis_client(url: str, namespace: str) -> tuple[Any, str]:
    """A client of the Redis the URL names, and the key prefix of `namespace` there."""
    scheme = url.split("://", 1)[0]
    if scheme == SENTINEL:
        client = sentinel_primary(url, max_connections=_MAX_CONNECTIONS, **_SOCKET_TIMEOUTS)
        return client, f"{namespace}:"
    if scheme == CLUSTER:
        address = read_redis_address(url)
        client = redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in address.servers],
            password=address.password,
            max_connections=_MAX_CONNECTIONS,
            **_SOCKET_TIMEOUTS,
        )
        return client, f"{{{namespace}}}:"
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=_MAX_CONNECTIONS,
        timeout=_WAIT_FOR_CONNECTION_S,
        health_check_interval=10,
        **_SOCKET_TIMEOUTS,
    )
    return redis.Redis(connection_pool=pool), f"{namespace}:"


class JsonSerializer:
    """The backends' serializer (cachelib's seam: `dumps`/`loads` for Redis, `dump`/`load` for
    files), writing exact JSON."""

    def dumps(self, value: Any) -> bytes:
        return exact_json.dumps(value).encode()

    def loads(self, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return exact_json.loads(data)
        except ValueError:  # also what an older (pickled) or foreign entry is: a miss
            _log.warning("cache: an entry that is not JSON was ignored")
            return None

    def dump(self, value: Any, file: IO[bytes]) -> None:
        file.write(self.dumps(value))

    def load(self, file: IO[bytes]) -> Any:
        return self.loads(file.read())


class JsonRedisCache(RedisCache):
    serializer = JsonSerializer()


class JsonFileSystemCache(FileSystemCache):
    serializer = JsonSerializer()  # also for its file count, written when it is created


class SafeCache:
    def __init__(self, backend: Any, *, ping: Callable[[], object], describe: str) -> None:
        self._backend = backend
        self._ping = ping
        self.describe = describe
        self._skip_until = 0.0
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        return self._guarded(lambda: self._backend.get(key), None)

    def get_many(self, *keys: str) -> list[Any]:
        return self._guarded(lambda: list(self._backend.get_many(*keys)), [None] * len(keys))

    def set(self, key: str, value: Any, ttl_s: int) -> None:
        self._guarded(lambda: self._backend.set(key, value, timeout=ttl_s), None)

    def add(self, key: str, value: Any, ttl_s: int) -> None:
        """Set only if absent: a reader filling the cache never overwrites a fresher write."""
        self._guarded(lambda: self._backend.add(key, value, timeout=ttl_s), None)

    def delete(self, *keys: str) -> None:
        self._guarded(lambda: self._backend.delete_many(*keys), None)

    def ping(self) -> None:
        """For readiness: raises when the cache is unreachable."""
        self._ping()

    def _guarded(self, operation: Callable[[], T], fallback: T) -> T:
        if time.monotonic() < self._skip_until:
            return fallback
        try:
            return operation()
        except Exception as exc:  # any cache failure degrades to "no cache", never to an error
            with self._lock:
                if time.monotonic() >= self._skip_until:
                    _log.warning(
                        "cache %s failed (%s); using the database for %.0fs",
                        self.describe,
                        exc,
                        _PAUSE_AFTER_FAILURE_S,
                    )
                    self._skip_until = time.monotonic() + _PAUSE_AFTER_FAILURE_S
            return fallback
