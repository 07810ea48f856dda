"""Reading configuration from the environment, failing fast with a message that names the
variable, what was wrong and what is accepted."""

import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(Exception):
    """The environment holds a value the service cannot start with."""


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={value} is outside {minimum}..{maximum}")
    return value


def redacted(url: str) -> str:
    """The URL with any password in it replaced, for messages: they reach logs and terminals.
    SQLAlchemy's URL parser reads a password up to its `@`, whatever it holds (`#`, `/`, `?`
    included, which split a URL elsewhere); a URL it cannot read (a list of hosts) loses all
    it holds before its last `@`, which no host contains."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        scheme, separator, rest = url.partition("://")
        if not separator:
            return "<unreadable URL>"
        credentials, at, hosts = rest.rpartition("@")
        return url if not at else f"{scheme}://{credentials.partition(':')[0]}:***@{hosts}"
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


_HOST = re.compile(r"[A-Za-z0-9.:-]{1,253}")


def env_host(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    if not _HOST.fullmatch(raw):
        raise ConfigError(f"{name}={raw!r} is not an IP address or host name")
    return raw


def env_http_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={redacted(raw)!r} is not an http(s) URL with a host")
    return raw.rstrip("/")


class RedisAddress(NamedTuple):
    """A Sentinel or Cluster URL read: its servers, the password, the path's parts."""

    servers: list[tuple[str, int]]
    password: str | None
    path: list[str]


def read_redis_address(url: str) -> RedisAddress:
    """The servers of a Sentinel or Cluster URL; ValueError names what is wrong."""
    rest = url.split("://", 1)[1]
    netloc, _, path = rest.partition("/")
    credentials, _, hosts = netloc.rpartition("@")
    password = unquote(credentials.partition(":")[2]) or None if credentials else None
    servers = []
    for server in hosts.split(","):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{server!r} is not host:port")
        servers.append((host.strip("[]"), int(port)))
    return RedisAddress(servers, password, [part for part in path.split("/") if part])


SENTINEL, CLUSTER = "redis+sentinel", "redis+cluster"


def sentinel_primary(url: str, **options: Any) -> Any:
    """A client of the primary a `redis+sentinel://` URL names, found through its Sentinels
    (reads too: a replica could serve what was just invalidated); `options` for the pool."""
    import redis.sentinel  # only where a Sentinel is configured

    address = read_redis_address(url)
    sentinel = redis.sentinel.Sentinel(
        address.servers,
        password=address.password,
        db=int(address.path[1]) if len(address.path) > 1 else 0,
        **options,
    )
    return sentinel.master_for(address.path[0])


def env_redis_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme in (SENTINEL, CLUSTER):
        try:
            address = read_redis_address(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}={redacted(raw)!r}: {exc}") from None
        if parts.scheme == SENTINEL and not (
            len(address.path) in (1, 2) and all(p.isdigit() for p in address.path[1:])
        ):
            raise ConfigError(
                f"{name}={redacted(raw)!r} names no primary: "
                f"{SENTINEL}://host:port[,host:port…]/<primary name>[/<db>]"
            )
        return raw
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ConfigError(
            f"{name}={redacted(raw)!r} is not a redis://, {SENTINEL}:// or {CLUSTER}:// URL"
        )
    return raw


def env_broker_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    parts = urlsplit(raw)
    amqp = parts.scheme in ("amqp", "amqps") and parts.hostname
    spool = parts.scheme == "sqlite" and len(parts.path) > 1
    if not (amqp or spool):
        raise ConfigError(
            f"{name}={redacted(raw)!r} is neither an amqp:// URL nor a sqlite:/// spool file"
        )
    return raw


_DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "mysql+pymysql", "mariadb+pymysql")


def env_database_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"{name}={redacted(raw)!r} is not a database URL") from None
    if url.drivername not in _DATABASE_DRIVERS:
        accepted = ", ".join(_DATABASE_DRIVERS)
        raise ConfigError(
            f"{name}={redacted(raw)!r}: driver {url.drivername!r} is not one of {accepted}"
        )
    return raw


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a web worker waits on a client (service_kit/process/connection_watch.py), and
    how many connections it holds at once."""

    connections: int = 1000  # <S>_WEB_CONNECTIONS, per web worker
    idle_timeout_s: int = 75  # <S>_IDLE_TIMEOUT_S: keep-alive, longer than a balancer's 60 s
    header_timeout_s: int = 10  # <S>_HEADER_TIMEOUT_S: from a request's first byte
    body_timeout_s: int = 30  # <S>_BODY_TIMEOUT_S: from the end of its headers


DEV_JWKS_FILE = "var/auth/jwks.json"


@dataclass(frozen=True)
class AuthSettings:
    """How both services verify bearer tokens (service_kit/http/auth.py)."""

    jwks_file: str  # AUTH_JWKS_FILE: the keys, by kid; default a dev key made on first start
    issuer: str  # AUTH_ISSUER
    audience: str  # AUTH_AUDIENCE
    leeway_s: int  # AUTH_LEEWAY_S: clock skew allowed on exp and nbf


def auth_settings(env: Mapping[str, str]) -> AuthSettings:
    jwks_file = env.get("AUTH_JWKS_FILE")
    if jwks_file and not os.path.isfile(jwks_file):
        raise ConfigError(f"AUTH_JWKS_FILE={jwks_file!r} is not a file")
    return AuthSettings(
        jwks_file=jwks_file or DEV_JWKS_FILE,
        issuer=env.get("AUTH_ISSUER") or "order-product-dev",
        audience=env.get("AUTH_AUDIENCE") or "order-product",
        leeway_s=env_int(env, "AUTH_LEEWAY_S", 30, minimum=0, maximum=600),
    )


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RateLimitSettings:
    """What a deployment changes of the policies the spec declares (`x-rate-limits`,
    service_kit/http/rate_limits.py), and where the counters live."""

    overrides: Mapping[str, tuple[int, int]]  # <S>_RATE_LIMITS: policy → (quota, window in s)
    factor: int  # RATE_LIMIT_FACTOR: every quota multiplied (make bench raises them away)
    trusted_proxies: tuple[IpNetwork, ...]  # TRUSTED_PROXIES: whose X-Forwarded-For is believed
    redis_url: str | None  # the service's Redis (its cache's); None: each process counts alone
    namespace: str  # the service: its counters' key prefix


_POLICY_OVERRIDE = re.compile(r"([a-z][a-z0-9-]{0,31})=([0-9]{1,9})/([0-9]{1,6})")


def rate_limit_settings(
    env: Mapping[str, str], prefix: str, redis_url: str | None
) -> RateLimitSettings:
    name = f"{prefix}_RATE_LIMITS"
    overrides = {}
    for part in filter(None, (env.get(name) or "").replace(" ", "").split(",")):
        match = _POLICY_OVERRIDE.fullmatch(part)
        if not match or int(match[2]) < 1 or int(match[3]) < 1:
            raise ConfigError(f"{name}: {part!r} is not <policy>=<quota>/<window seconds>")
        overrides[match[1]] = (int(match[2]), int(match[3]))
    proxies = []
    for part in filter(None, (env.get("TRUSTED_PROXIES") or "").replace(" ", "").split(",")):
        try:
            proxies.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {part!r} is not an address or CIDR") from None
    return RateLimitSettings(
        overrides=overrides,
        factor=env_int(env, "RATE_LIMIT_FACTOR", 1, minimum=1, maximum=1_000_000),
        trusted_proxies=tuple(proxies),
        redis_url=redis_url,
        namespace=prefix.lower(),
    )


@dataclass(frozen=True)
class ServiceConfig:
    """What one service reads from the environment; `<S>` is its prefix (PRODUCT, ORDER) and
    `<P>` the prefix of the service it calls."""

    host: str  # <S>_HOST: the address the web service listens on (127.0.0.1 unless set)
    port: int  # <S>_PORT
    database_url: str  # <S>_DATABASE_URL
    web_workers: int  # <S>_WEB_WORKERS
    worker_nice: int  # <S>_WORKER_NICE: the worker process yields the CPU to the web workers
    # <S>_WORKER_HOLD_BACK_S: at most this long the worker's order flow waits while requests keep
    # the machine busy (service_kit/messaging/hold_back.py); 0: never
    worker_hold_back_s: int
    db_pool_size: int  # <S>_DB_POOL_SIZE
    peer_url: str  # <P>_SERVICE_URL, default http://127.0.0.1:<P>_PORT
    peer_timeout_s: float  # <P>_SERVICE_TIMEOUT_MS
    log_level: str  # LOG_LEVEL
    log_format: str  # LOG_FORMAT: text (a terminal's) or json (a line of JSON per record)
    worker_metrics_port: int  # <S>_WORKER_METRICS_PORT: the worker's /metrics; 0: none
    # <S>_METRICS_PORT: the web workers' /metrics on a port of its own (gunicorn's master serves
    # it), and no longer on the API port; 0: on the API port
    metrics_port: int
    validate_responses: bool  # <S>_VALIDATE_RESPONSES=1: check every response against the spec
    access_log: bool  # <S>_ACCESS_LOG=0: no line per request (a share of a web worker's CPU)
    connection_limits: ConnectionLimits
    auth: AuthSettings
    redis_url: str | None  # <S>_REDIS_URL or REDIS_URL; unset: a file-system cache in cache_dir
    cache_dir: str  # $CACHE_DIR/<service>, CACHE_DIR defaulting to var/cache
    cache_ttl_s: int  # <S>_CACHE_TTL_S
    inbox_retention_s: int  # <S>_INBOX_RETENTION_H: applied-event ids kept this long
    idempotency_ttl_s: int  # <S>_IDEMPOTENCY_TTL_H: how long a key's first answer is kept
    broker_url: str  # <S>_BROKER_URL or BROKER_URL: amqp://… (RabbitMQ) or sqlite:///… (spool)
    deployment: str  # DEPLOYMENT: single-host, or multi-host (refuses what one host keeps)
    rate_limits: RateLimitSettings  # <S>_RATE_LIMITS, RATE_LIMIT_FACTOR, TRUSTED_PROXIES


def load_service_config(
    env: Mapping[str, str],
    *,
    service: str,
    default_port: int,
    peer: str,
    peer_default_port: int,
    peer_default_timeout_ms: int,
) -> ServiceConfig:
    prefix, peer_prefix = service.upper(), peer.upper()
    peer_port = env_int(env, f"{peer_prefix}_PORT", peer_default_port, minimum=1, maximum=65535)
    log_level = (env.get("LOG_LEVEL") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={log_level!r} is not one of {', '.join(_LOG_LEVELS)}")
    log_format = (env.get("LOG_FORMAT") or "text").lower()
    if log_format not in _LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT={log_format!r} is not one of {', '.join(_LOG_FORMATS)}")
    port = env_int(env, f"{prefix}_PORT", default_port, minimum=1, maximum=65535)
    deployment = (env.get("DEPLOYMENT") or "single-host").lower()
    if deployment not in _DEPLOYMENTS:
        raise ConfigError(f"DEPLOYMENT={deployment!r} is not one of {', '.join(_DEPLOYMENTS)}")
    redis_url = env_redis_url(env, _own_or_shared(env, f"{prefix}_REDIS_URL", "REDIS_URL"))
    config = ServiceConfig(
        host=env_host(env, f"{prefix}_HOST", "127.0.0.1"),
        port=port,
        database_url=env_database_url(
            env, f"{prefix}_DATABASE_URL", f"sqlite:///var/{service.lower()}.db"
        ),
        web_workers=env_int(env, f"{prefix}_WEB_WORKERS", 2, minimum=1, maximum=64),
        worker_nice=env_int(env, f"{prefix}_WORKER_NICE", 19, minimum=0, maximum=19),
        worker_hold_back_s=env_int(
            env, f"{prefix}_WORKER_HOLD_BACK_S", 60, minimum=0, maximum=3600
        ),
        db_pool_size=env_int(env, f"{prefix}_DB_POOL_SIZE", 10, minimum=1, maximum=200),
        peer_url=env_http_url(env, f"{peer_prefix}_SERVICE_URL", f"http://127.0.0.1:{peer_port}"),
        peer_timeout_s=env_int(
            env,
            f"{peer_prefix}_SERVICE_TIMEOUT_MS",
            peer_default_timeout_ms,
            minimum=10,
            maximum=60_000,
        )
        / 1000,
        log_level=log_level,
        log_format=log_format,
        worker_metrics_port=env_int(
            env, f"{prefix}_WORKER_METRICS_PORT", min(port + 1, 65535), minimum=0, maximum=65535
        ),
        metrics_port=_metrics_port(env, prefix, port),
        validate_responses=env_int(env, f"{prefix}_VALIDATE_RESPONSES", 0, minimum=0, maximum=1)
        == 1,
        access_log=env_int(env, f"{prefix}_ACCESS_LOG", 1, minimum=0, maximum=1) == 1,
        connection_limits=_connection_limits(env, prefix),
        auth=auth_settings(env),
        redis_url=redis_url,
        cache_dir=f"{env.get('CACHE_DIR') or 'var/cache'}/{service.lower()}",
        cache_ttl_s=env_int(env, f"{prefix}_CACHE_TTL_S", 60, minimum=1, maximum=86_400),
        inbox_retention_s=env_int(env, f"{prefix}_INBOX_RETENTION_H", 168, minimum=1, maximum=8760)
        * 3600,
        idempotency_ttl_s=env_int(env, f"{prefix}_IDEMPOTENCY_TTL_H", 24, minimum=1, maximum=8760)
        * 3600,
        broker_url=env_broker_url(
            env,
            _own_or_shared(env, f"{prefix}_BROKER_URL", "BROKER_URL"),
            "sqlite:///var/events.db",
        ),
        deployment=deployment,
        rate_limits=rate_limit_settings(env, prefix, redis_url),
    )
    if deployment == "multi-host":
        _refuse_single_host_parts(config, prefix)
    return config


_DEPLOYMENTS = ("single-host", "multi-host")


def _refuse_single_host_parts(config: ServiceConfig, prefix: str) -> None:
    """Processes on several hosts cannot share a file: not the cache folder (an invalidation
    would reach one host only), nor a SQLite database or event spool (each host would have its
    own)."""
    if config.redis_url is None:
        raise ConfigError(
            f"DEPLOYMENT=multi-host needs {prefix}_REDIS_URL or REDIS_URL: the file cache "
            "is seen by one host only"
        )
    if config.database_url.startswith("sqlite"):
        raise ConfigError(
            f"DEPLOYMENT=multi-host needs a MySQL/MariaDB {prefix}_DATABASE_URL, not SQLite"
        )
    if not config.broker_url.startswith(("amqp://", "amqps://")):
        raise ConfigError(
            f"DEPLOYMENT=multi-host needs an amqp:// {prefix}_BROKER_URL or BROKER_URL: the "
            "SQLite event spool is seen by one host only"
        )


def _metrics_port(env: Mapping[str, str], prefix: str, port: int) -> int:
    name = f"{prefix}_METRICS_PORT"
    metrics_port = env_int(env, name, 0, minimum=0, maximum=65535)
    worker_name = f"{prefix}_WORKER_METRICS_PORT"
    worker_port = env_int(env, worker_name, min(port + 1, 65535), minimum=0, maximum=65535)
    for other, taken in ((f"{prefix}_PORT", port), (worker_name, worker_port)):
        if metrics_port and metrics_port == taken:
            raise ConfigError(f"{name}={metrics_port} is {other} too: give it a port of its own")
    return metrics_port


def _own_or_shared(env: Mapping[str, str], own: str, shared: str) -> str:
    """Which variable to read: the service's own (its credentials, in a deployment) if it is
    set, else the one both services share."""
    return own if env.get(own) else shared


def _connection_limits(env: Mapping[str, str], prefix: str) -> ConnectionLimits:
    defaults = ConnectionLimits()

    def seconds(name: str, default: int) -> int:
        return env_int(env, f"{prefix}_{name}", default, minimum=1, maximum=3600)

    return ConnectionLimits(
        connections=env_int(
            env, f"{prefix}_WEB_CONNECTIONS", defaults.connections, minimum=10, maximum=100_000
        ),
        idle_timeout_s=seconds("IDLE_TIMEOUT_S", defaults.idle_timeout_s),
        header_timeout_s=seconds("HEADER_TIMEOUT_S", defaults.header_timeout_s),
        body_timeout_s=seconds("BODY_TIMEOUT_S", defaults.body_timeout_s),
    )


def exit_on_config_error(load: Callable[[], ServiceConfig]) -> ServiceConfig:
    """For entry points: print what is wrong and stop, instead of a traceback."""
    try:
        return load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
