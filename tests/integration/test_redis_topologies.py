"""The shared cache and the rate limiter on the Redis topologies of a multi-host deployment,
started here from this machine's redis-server: a primary found through Sentinel, and a
three-node Cluster."""

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devstack.processes import free_port
from service_kit.config import RateLimitSettings
from service_kit.http import rate_limits
from service_kit.http.caller import Caller
from service_kit.storage.cache import open_cache
from tests.conftest import _absent


def redis_server(folder: Path, *arguments: str) -> subprocess.Popen:
    if shutil.which("redis-server") is None:
        _absent("no redis-server on this machine")
    return subprocess.Popen(
        ["redis-server", *arguments, "--dir", str(folder), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(check, what: str, timeout_s: float = 20) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout_s}s")


def stopped(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=10)


@pytest.fixture
def sentinel_url(redis_url, tmp_path) -> Iterator[str]:
    """A Sentinel watching this machine's Redis as primary `cache` (its database 15)."""
    primary = redis.Redis.from_url(redis_url)
    host, port = (
        primary.connection_pool.connection_kwargs["host"],
        primary.connection_pool.connection_kwargs["port"],
    )
    sentinel_port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor cache {host} {port} 1\n"
    )
    sentinel = redis_server(tmp_path, str(conf), "--sentinel")
    try:
        watcher = redis.Redis("127.0.0.1", sentinel_port)
        wait_for(lambda: watcher.sentinel_get_master_addr_by_name("cache"), "no Sentinel")
        yield f"redis+sentinel://127.0.0.1:{sentinel_port}/cache/15"
    finally:
        stopped([sentinel])


def cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536 and port_is_free(port + 10000):
            return port


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def cluster_url(redis_url, tmp_path) -> Iterator[str]:
    """Three primaries sharing the hash slots."""
    ports = [cluster_port() for _ in range(3)]
    nodes = [
        redis_server(
            tmp_path,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            f"nodes-{port}.conf",
        )  # fmt: skip
        for port in ports
    ]
    try:
        for port in ports:
            wait_for(redis.Redis("127.0.0.1", port).ping, f"no Redis on {port}")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
            + ["--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in ports:
            info = redis.Redis("127.0.0.1", port).cluster
            wait_for(lambda info=info: info("INFO")["cluster_state"] == "ok", "no Cluster")
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    finally:
        stopped(nodes)


def exercise(url: str, tmp_path: Path) -> None:
    """Every operation the services use, through the adapter."""
    cache = open_cache(url, namespace="topology", file_dir=str(tmp_path))
    cache.ping()
    cache.set("a", {"price": "7.25"}, 60)
    cache.add("b", [1, 2], 60)
    cache.add("b", [3], 60)  # an existing entry stays
    assert cache.get_many("a", "b", "c") == [{"price": "7.25"}, [1, 2], None]
    cache.delete("a", "b")
    assert cache.get_many("a", "b") == [None, None]


def limit(url: str) -> None:
    """The rate limiter on the same URL: a quota of 2, the third request refused."""
    spec = {"paths": {"/a": {"get": {"operationId": "a", "x-rate-limits": [POLICY]}}}}
    settings = RateLimitSettings({}, 1, (), url, "topology")
    limiter = rate_limits.Limiter(spec, settings, verifier=None)  # type: ignore[arg-type]
    caller = Caller(subject=uuid.uuid4().hex, scopes=frozenset())
    answers = [limiter.check({}, "a", caller) for _ in range(3)]
    assert answers[:2] == [None, None] and answers[2].status_code == 429


POLICY = {"name": "p", "quota": 2, "window": 60}


def test_the_cache_reaches_its_primary_through_sentinel(sentinel_url, redis_url, tmp_path):
    exercise(sentinel_url, tmp_path)
    limit(sentinel_url)
    open_cache(sentinel_url, namespace="topology", file_dir=str(tmp_path)).set("seen", 1, 60)
    assert redis.Redis.from_url(redis_url).get("topology:seen") == b"1"  # on the primary


def test_the_cache_works_on_a_cluster(cluster_url, tmp_path):
    exercise(cluster_url, tmp_path)
    limit(cluster_url)
