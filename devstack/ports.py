"""`make run`'s check before it starts anything: every port it is about to listen on (both web
services', their metrics ports if set, both workers' metrics) is free. The web services'
sockets use SO_REUSEPORT (one per gunicorn worker, for the kernel to spread connections), so a
second `make run` would otherwise share the first one's ports and split its traffic between
two versions of the code; the bind test here leaves SO_REUSEPORT out, and any listener on the
port makes it fail.

    python -m devstack.ports    # exit status 1 and one line per port taken
"""

import errno
import os
import socket
import sys
from collections.abc import Mapping
from typing import NamedTuple

import psutil

from order_service.config import load_config as order_config
from product_service.config import load_config as product_config
from service_kit.config import ConfigError


class Needed(NamedTuple):
    what: str  # e.g. "product-service (PRODUCT_PORT)"
    host: str
    port: int


def needed_ports(env: Mapping[str, str]) -> list[Needed]:
    """The ports `make run` listens on, from the same configuration the processes read."""
    needed = []
    for service, load in (("product", product_config), ("order", order_config)):
        config, prefix = load(env), service.upper()
        needed.append(Needed(f"{service}-service ({prefix}_PORT)", config.host, config.port))
        if config.metrics_port:
            needed.append(
                Needed(
                    f"{service}-service's metrics ({prefix}_METRICS_PORT)",
                    config.host,
                    config.metrics_port,
                )
            )
        if config.worker_metrics_port:
            needed.append(
                Needed(
                    f"{service}-worker's metrics ({prefix}_WORKER_METRICS_PORT)",
                    config.host,
                    config.worker_metrics_port,
                )
            )
    return needed


def below_the_ephemeral_range() -> range:
    """Ports that no outgoing connection takes (those get theirs from the ephemeral range); none
    where that range is unknown (not Linux)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ephemeral:
            lowest = int(ephemeral.read().split()[0])
    except OSError:
        return range(0)
    return range(max(1024, lowest - 10_000), lowest)


def taken(host: str, port: int) -> OSError | None:
    """Why `port` cannot be listened on at `host`, or None. SO_REUSEADDR as gunicorn sets it
    (a connection of a former run in TIME_WAIT is no obstacle), SO_REUSEPORT never."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            probe.listen(1)
        except OSError as exc:
            return exc
    return None


def holder(port: int) -> str | None:
    """The process listening on `port`, as `pid N (command line)`, if this user may see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for connection in connections:
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
            and connection.pid
        ):
            try:
                command = " ".join(psutil.Process(connection.pid).cmdline())
            except psutil.Error:
                command = "?"
            return f"pid {connection.pid} ({command[:120]})"
    return None


def problems(env: Mapping[str, str]) -> list[str]:
    """One line per port that is not free, naming it and, when known, what holds it."""
    lines = []
    seen: dict[int, str] = {}
    for what, host, port in needed_ports(env):
        if port in seen:
            lines.append(f"port {port} is wanted twice: by {seen[port]} and by {what}")
            continue
        seen[port] = what
        if (error := taken(host, port)) is None:
            continue
        if error.errno == errno.EADDRINUSE:
            by = holder(port)
            held = f"held by {by}" if by else "held by another process (not visible to this user)"
            lines.append(f"port {port} on {host} for {what} is in use, {held}")
        else:
            lines.append(f"port {port} on {host} for {what} cannot be listened on: {error}")
    return lines


def main() -> None:
    try:
        found = problems(os.environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for line in found:
        print(f"make run: {line}", file=sys.stderr)
    if found:
        print(
            "make run: nothing started; stop what holds the port or choose other ports "
            "(PRODUCT_PORT, ORDER_PORT, <S>_METRICS_PORT, <S>_WORKER_METRICS_PORT)",
            file=sys.stderr,
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main()
