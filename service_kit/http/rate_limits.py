"""Rate limits declared in the specs, enforced on both request paths, announced to clients.

- **Policies** come from the spec's `x-rate-limits`: a list of `{name, quota, window}` (window in
  seconds) on an operation, else the spec's own list (`[]`: not limited). Operations naming the
  same policy share its quota. A deployment changes them with `<S>_RATE_LIMITS`
  (`name=quota/window,…`) and multiplies every quota by `RATE_LIMIT_FACTOR`.
- **A client** is the token's subject when the request carries a valid token (always, on a
  secured operation: the check runs after authentication), else its address: the socket's, or,
  when the socket is one of `TRUSTED_PROXIES`, the nearest address of `Forwarded` (`for=`) or
  `X-Forwarded-For` that is not a trusted proxy.
- **The limiter** is the `limits` library's sliding-window counter: on the service's Redis, its
  two scripts (take a unit, read the window) sent in one pipeline, so a request pays one round
  trip; without Redis, in each process's memory. A storage failure fails open: the request is
  served unchecked, logged, counted (`http_server_rate_limiter_failures_total`), and the
  storage is left alone for a few seconds.
- **Answers** of a checked request carry `RateLimit-Policy` and `RateLimit`
  (draft-ietf-httpapi-ratelimit-headers, Structured Fields lists); over a policy: 429
  problem+json of type `urn:order-product:problem:quota-exceeded`, with `Retry-After` and the
  violated `policy`.

The hooks: `Limiter.check` right after each path admits the request (its operation record's
`admit`: service_kit/http/app.py, fast_path.py), and `with_headers` around the app."""

import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from limits.storage import MemoryStorage, RedisStorage, storage_from_string

from service_kit import errors
from service_kit.config import (
    CLUSTER,
    SENTINEL,
    ConfigError,
    RateLimitSettings,
    sentinel_primary,
)
from service_kit.http import auth, edge
from service_kit.http.caller import Caller
from service_kit.telemetry import metrics

EXTENSION = "x-rate-limits"
QUOTA_EXCEEDED = "urn:order-product:problem:quota-exceeded"
DECISION = "service_kit.rate_limit"  # the environ key: the checked request's counts
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")  # a policy name, written as an sf-string unescaped
_PAUSE_AFTER_FAILURE_S = 3.0
_SOCKET_TIMEOUTS = {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}
_MAX_HOPS = 16  # forwarded addresses looked at, from the nearest
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    name: str
    quota: int
    window_s: int

    @property
    def field(self) -> str:
        """Its member of `RateLimit-Policy`."""
        return f'"{self.name}";q={self.quota};w={self.window_s}'


@dataclass(frozen=True)
class _Operation:
    policies: tuple[Policy, ...]
    policy_field: str  # RateLimit-Policy, the same on every answer


@dataclass(frozen=True)
class Decision:
    """A checked request's standing: per policy, (units remaining, seconds until reset)."""

    policy_field: str
    standing: tuple[tuple[Policy, int, int], ...]

    def headers(self) -> list[tuple[str, str]]:
        current = ", ".join(f'"{p.name}";r={left};t={reset}' for p, left, reset in self.standing)
        return [("RateLimit-Policy", self.policy_field), ("RateLimit", current)]


def compile_policies(
    spec: Mapping[str, Any], settings: RateLimitSettings
) -> dict[str, tuple[Policy, ...]]:
    """Each operationId's policies, the deployment's overrides and factor applied; ValueError
    when the spec's declarations are malformed, disagree, or an override names no policy."""
    default = spec.get(EXTENSION, [])
    declared: dict[str, Policy] = {}
    by_operation = {}
    for methods in spec["paths"].values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            policies = []
            for entry in operation.get(EXTENSION, default):
                policy = _policy(entry, operation["operationId"])
                if declared.setdefault(policy.name, policy) != policy:
                    raise ValueError(f"{EXTENSION}: policy {policy.name} is declared differently")
                policies.append(policy)
            by_operation[operation["operationId"]] = policies
    unknown = set(settings.overrides) - set(declared)
    if unknown:
        raise ConfigError(f"<S>_RATE_LIMITS names no policy of the spec: {sorted(unknown)}")

    def deployed(policy: Policy) -> Policy:
        quota, window = settings.overrides.get(policy.name, (policy.quota, policy.window_s))
        return Policy(policy.name, quota * settings.factor, window)

    return {op: tuple(map(deployed, policies)) for op, policies in by_operation.items()}


def _policy(entry: Any, operation_id: str) -> Policy:
    if (
        not isinstance(entry, dict)
        or set(entry) != {"name", "quota", "window"}
        or not isinstance(entry["name"], str)
        or not _NAME.fullmatch(entry["name"])
        or not all(type(entry[k]) is int and entry[k] >= 1 for k in ("quota", "window"))
    ):
        raise ValueError(
            f"{operation_id}: {EXTENSION} entry {entry!r} is not {{name, quota, window}}"
        )
    return Policy(entry["name"], entry["quota"], entry["window"])


class Limiter:
    """Checks requests against their operation's policies (`check`); one per app."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        settings: RateLimitSettings | None,
        verifier: auth.TokenVerifier,
        *,
        storage: Any = None,
    ) -> None:
        settings = settings or _UNCONFIGURED
        self._verifier = verifier
        self._trusted = settings.trusted_proxies
        self._operations = {
            operation_id: _Operation(policies, ", ".join(p.field for p in policies))
            for operation_id, policies in compile_policies(spec, settings).items()
            if policies
        }
        self._windows = _Windows(storage or open_storage(settings.redis_url, settings.namespace))
        self._skip_until = 0.0
        self._lock = threading.Lock()

    def check(
        self, environ: dict[str, Any], operation_id: str, caller: Caller | None
    ) -> edge.WsgiApp | None:
        """After authentication: None to go on (the request's standing kept for its answer's
        headers), or the 429 answer. Decides once per request, whichever path asks first."""
        operation = self._operations.get(operation_id)
        if operation is None or DECISION in environ:
            return None
        environ[DECISION] = None
        if caller is None and "HTTP_AUTHORIZATION" in environ:
            caller = self._caller(environ)
        client = f"s:{caller.subject}" if caller else f"a:{client_address(environ, self._trusted)}"
        if time.monotonic() < self._skip_until:
            metrics.rate_limiter_failures.labels(operation_id).inc()
            return None
        try:
            counts = self._windows.hit([(f"{p.name}/{client}", p) for p in operation.policies])
        except Exception as exc:  # noqa: BLE001 - a limiter outage must not refuse the service
            self._failed(operation_id, exc)
            return None
        standing, refused = [], None
        for policy, (acquired, window) in zip(operation.policies, counts, strict=True):
            left, reset, wait = _standing(policy, acquired, *window)
            standing.append((policy, left, reset))
            if not acquired and refused is None:
                refused = (policy, wait)
        environ[DECISION] = Decision(operation.policy_field, tuple(standing))
        if refused is None:
            return None
        policy, wait = refused
        metrics.rate_limited.labels(operation_id, policy.name).inc()
        return edge.problem_response(
            429,
            "Too Many Requests",
            f"more than {policy.quota} requests in {policy.window_s} s (policy {policy.name}); "
            f"retry after {wait} s",
            headers={"Retry-After": str(wait)},
            problem_type=QUOTA_EXCEEDED,
            policy=policy.name,
        )

    def _caller(self, environ: dict[str, Any]) -> Caller | None:
        """The subject of a public operation's request that carries a valid token."""
        try:
            return self._verifier.caller(environ.get("HTTP_AUTHORIZATION"))
        except errors.ServiceError:
            return None

    def _failed(self, operation_id: str, exc: Exception) -> None:
        metrics.rate_limiter_failures.labels(operation_id).inc()
        with self._lock:
            if time.monotonic() >= self._skip_until:
                _log.warning(
                    "rate limiter failed (%s); requests are served unchecked for %.0fs",
                    exc,
                    _PAUSE_AFTER_FAILURE_S,
                )
                self._skip_until = time.monotonic() + _PAUSE_AFTER_FAILURE_S


_UNCONFIGURED = RateLimitSettings(
    overrides={}, factor=1, trusted_proxies=(), redis_url=None, namespace="service"
)


def with_headers(app: edge.WsgiApp) -> edge.WsgiApp:
    """Adds the checked request's RateLimit fields to whatever answers it."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            decision = environ.get(DECISION)
            if decision is not None:
                headers = [*headers, *decision.headers()]
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return serve


# The counts.


def _standing(
    policy: Policy,
    acquired: bool,
    previous_count: int,
    previous_ttl: float,
    current_count: int,
    current_ttl: float,
) -> tuple[int, int, int]:
    """(units left, seconds until the window resets, seconds until one more is admitted) from
    the sliding window as `limits` keeps it: the previous window's count weighs what is left of
    it, and the current window ends when its key's time to live (set to two windows) is one
    window."""
    window = policy.window_s
    weighted = previous_count * previous_ttl / window + current_count
    left = max(0, policy.quota - math.floor(weighted))
    window_ends_in = max(0.0, current_ttl - window) if current_count else float(window)
    wait = _admitted_in(policy, previous_count, previous_ttl, current_count, window_ends_in)
    reset = wait if left == 0 else window_ends_in
    return left, max(0, math.ceil(reset)), max(1, math.ceil(wait)) if not acquired else 0


def _admitted_in(
    policy: Policy, previous: int, previous_ttl: float, current: int, window_ends_in: float
) -> float:
    """Seconds until the weighted count is below the quota (a unit is free)."""
    quota, window = policy.quota, policy.window_s
    if current < quota:  # in this window, once enough of the previous one has slid out
        if previous == 0 or previous * previous_ttl / window + current < quota:
            return 0.0
        return min(window_ends_in, previous_ttl - (quota - current) * window / previous)
    if current == 0:
        return window_ends_in
    # after this window: the current count becomes the previous one, sliding out
    return window_ends_in + max(0.0, window - quota * window / current)


class _Lease:
    """Units of one client's policy taken from the shared window ahead, spent here."""

    __slots__ = ("size", "left", "expires", "window_read", "refilling")

    def __init__(self) -> None:
        self.size = 1  # units the last lease took, from which the next one's are worked out
        self.left = 0
        self.expires = 0.0
        self.window_read: tuple = (0, 0.0, 0, 0.0)
        self.refilling = False  # a request of this process is taking the next lease


class _Windows:
    """The sliding windows of `limits`, taken and read in one go, through leases: a client that
    keeps spending its units quickly takes them from the shared window in growing leases (twice
    as many each time one is spent within half of `LEASE_S`, at most 1% of the quota) and spends
    them in this process without a round trip; a lease not spent within `LEASE_S` lapses, and
    the next is half as big. One request at a time takes a client's next lease; the client's
    requests meanwhile take a unit each, so no lease replaces another. Units are taken
    atomically from the window, so every process together never admits more than the quota; a
    lapsed lease's unspent units count against its client for the window (at most 1% of the
    quota each), and a client with few requests pays a round trip for each, as without leases.
    A single round trip per request had cost a fifth of a web worker's CPU under load
    (docs/performance.md)."""

    LEASE_S = 1.0
    MOST_PER_QUOTA = 0.01

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self._pipelined = isinstance(storage, RedisStorage) and isinstance(
            storage.get_connection(), redis.Redis
        )
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def hit(self, keys: Sequence[tuple[str, Policy]]) -> list[tuple[bool, tuple]]:
        """Per (key, policy): (a unit taken, (previous count, its ttl, current count, its
        ttl)), the ttls in seconds; the counts leave out the units leased here but not spent,
        but for a unit taken while another request takes the lease (the window as read)."""
        now = time.monotonic()
        results: list[tuple[bool, tuple] | None] = []
        # What this request takes from the shared windows: (key, policy, units, the lease it
        # takes, or None: a unit of its own while another request takes the lease).
        wanted: list[tuple[str, Policy, int, _Lease | None]] = []
        with self._lock:
            for key, policy in keys:
                lease = self._leases.get(key)
                if lease is not None and lease.left and now < lease.expires:
                    lease.left -= 1
                    results.append((True, _unspent_left_out(lease.window_read, lease.left)))
                    continue
                results.append(None)
                if lease is not None and lease.refilling:
                    wanted.append((key, policy, 1, None))
                    continue
                lease = lease or self._new_lease(key)
                size = self._next_size(lease, policy, now)
                lease.refilling = True
                wanted.append((key, policy, size, lease))
        if not wanted:
            return results  # type: ignore[return-value]
        try:
            taken = self._take([(key, policy, size) for key, policy, size, _ in wanted])
            too_big = [
                index
                for index, ((_, _, size, _), (ok, _)) in enumerate(zip(wanted, taken, strict=True))
                if not ok and size > 1
            ]
            if too_big:  # a lease bigger than what is left of the quota: a unit of its own
                for index in too_big:
                    key, policy, _, lease = wanted[index]
                    wanted[index] = (key, policy, 1, lease)
                again = self._take([wanted[index][:3] for index in too_big])
                for index, answer in zip(too_big, again, strict=True):
                    taken[index] = answer
        except BaseException:
            with self._lock:
                _taken_or_not(wanted)
            raise
        with self._lock:
            _taken_or_not(wanted)  # under the same lock as the answers: no refill in between
            answers = iter(zip(wanted, taken, strict=True))
            for index, result in enumerate(results):
                if result is not None:
                    continue
                (_, _, size, lease), (acquired, window_read) = next(answers)
                if lease is None:  # the counts as read: the units leased here count as used
                    results[index] = (acquired, window_read)
                    continue
                # The lease is replaced: what a lapsed one left was counted spent.
                lease.left = size - 1 if acquired else 0
                # A refused client is not a busy one: its next request asks for one unit.
                lease.expires = now + self.LEASE_S if acquired else 0.0
                lease.size = size if acquired else 1
                lease.window_read = window_read
                results[index] = (acquired, _unspent_left_out(window_read, lease.left))
        return results  # type: ignore[return-value]

    def _new_lease(self, key: str) -> _Lease:
        if len(self._leases) > 100_000:  # clients come and go: forget them all, rarely
            self._leases.clear()
        lease = self._leases[key] = _Lease()
        return lease

    def _next_size(self, lease: _Lease, policy: Policy, now: float) -> int:
        """Twice the last lease's size if it was spent within half its time (so the next one is
        spent in time too), the same if spent in time, half if it lapsed or the client's next
        request came after it expired."""
        most = max(1, int(policy.quota * self.MOST_PER_QUOTA))
        if lease.left == 0 and now < lease.expires:  # spent in time: the client is busy
            if now < lease.expires - self.LEASE_S / 2:
                lease.size = min(most, lease.size * 2)
        else:
            lease.size = max(1, lease.size // 2)
        return lease.size

    def _take(self, wanted: Sequence[tuple[str, Policy, int]]) -> list[tuple[bool, tuple]]:
        if self._pipelined:
            return self._hit_pipelined(wanted)
        results = []
        for key, policy, size in wanted:
            acquired = self._storage.acquire_sliding_window_entry(
                key, policy.quota, policy.window_s, size
            )
            results.append((acquired, self._storage.get_sliding_window(key, policy.window_s)))
        return results

    def _hit_pipelined(self, keys: Sequence[tuple[str, Policy, int]]) -> list[tuple[bool, tuple]]:
        storage: RedisStorage = self._storage
        acquire, window = storage.lua_acquire_sliding_window, storage.lua_sliding_window

        def send() -> list[Any]:
            pipe = storage.get_connection().pipeline(transaction=False)
            for key, policy, size in keys:
                both = (
                    storage.prefixed_key(storage._previous_window_key(key)),
                    storage.prefixed_key(storage._current_window_key(key)),
                )
                pipe.evalsha(acquire.sha, 2, *both, policy.quota, policy.window_s, size)
                pipe.evalsha(window.sha, 2, *both, policy.window_s)
            return pipe.execute()

        try:
            replies = send()
        except redis.exceptions.NoScriptError:  # a new, restarted or flushed Redis: load, once
            for script in (acquire, window):
                storage.get_connection().script_load(script.script)
            replies = send()
        results = []
        for index in range(0, len(replies), 2):
            p_count, p_ttl, c_count, c_ttl = replies[index + 1] or (0, 0, 0, 0)
            window_read = (
                int(p_count or 0),
                max(0.0, float(p_ttl or 0)) / 1000,
                int(c_count or 0),
                max(0.0, float(c_ttl or 0)) / 1000,
            )
            results.append((bool(replies[index]), window_read))
        return results


def _taken_or_not(wanted: Sequence[tuple[str, Policy, int, _Lease | None]]) -> None:
    """The leases these requests were taking are free to be taken again."""
    for *_, lease in wanted:
        if lease is not None:
            lease.refilling = False


def _unspent_left_out(window_read: tuple, left: int) -> tuple:
    previous, previous_ttl, current, current_ttl = window_read
    return previous, previous_ttl, max(0, current - left), current_ttl


def open_storage(redis_url: str | None, namespace: str) -> Any:
    """The service's Redis as the `limits` storage (one server or a Sentinel-watched primary:
    pipelined; a Cluster: one script at a time), else this process's memory."""
    prefix = f"{namespace}:rate-limit"
    if not redis_url:
        return MemoryStorage()
    scheme = redis_url.split("://", 1)[0]
    if scheme == CLUSTER:
        return storage_from_string(redis_url, key_prefix=prefix, **_SOCKET_TIMEOUTS)
    if scheme == SENTINEL:
        pool = sentinel_primary(redis_url, **_SOCKET_TIMEOUTS).connection_pool
    else:
        pool = redis.BlockingConnectionPool.from_url(
            redis_url, max_connections=100, timeout=1.0, **_SOCKET_TIMEOUTS
        )
    return RedisStorage("redis://", connection_pool=pool, key_prefix=prefix)


# The client's address.


def client_address(environ: Mapping[str, Any], trusted: Sequence[Any]) -> str:
    """The socket's address, or behind trusted proxies the nearest forwarded address that is
    not one of them (all trusted: the farthest)."""
    remote = environ.get("REMOTE_ADDR") or ""
    if not trusted or not _is_trusted(remote, tuple(trusted)):
        return remote
    hops = _forwarded(environ)
    for hop in reversed(hops):
        if not _is_trusted(hop, tuple(trusted)):
            return hop
    return hops[0] if hops else remote


def _forwarded(environ: Mapping[str, Any]) -> list[str]:
    """The forwarded addresses, farthest first (at most the nearest _MAX_HOPS): RFC 7239's
    `for=` when `Forwarded` is sent, else `X-Forwarded-For`."""
    if forwarded := environ.get("HTTP_FORWARDED"):
        hops = []
        for element in forwarded.split(",")[-_MAX_HOPS:]:
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    hops.append(_address(value.strip('"')))
        return hops
    listed = environ.get("HTTP_X_FORWARDED_FOR") or ""
    return [_address(hop.strip()) for hop in listed.split(",")[-_MAX_HOPS:] if hop.strip()]


def _address(value: str) -> str:
    """A forwarded node as an address: `[v6]:port` and `v4:port` lose their port; what is not
    an address (`unknown`, an obfuscated name) is kept as written, shortened."""
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value[:64]


@lru_cache(maxsize=4096)
def _is_trusted(address: str, trusted: tuple[Any, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
