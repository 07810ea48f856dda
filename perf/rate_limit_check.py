"""What the rate-limit check costs a web worker per request (POST /orders' policy, quotas raised
out of the way): in this process's memory, and on Redis (one pipelined round trip).

    .venv/bin/python -m perf.rate_limit_check [redis://127.0.0.1:6379/15]

The Redis database given is emptied afterwards."""

import sys
import tempfile
import time
from pathlib import Path

import redis
import yaml

from devstack.throwaway import write_signing_key
from service_kit.config import auth_settings, rate_limit_settings
from service_kit.http import auth, rate_limits
from service_kit.http.app import SPEC_DIR
from service_kit.http.dev_tokens import mint

ROUNDS = 3000


def cost(limiter: rate_limits.Limiter, caller: object) -> tuple[float, float]:
    """(µs of wall time, µs of this process's CPU) per check and its answer's fields."""
    for _ in range(200):
        limiter.check({"REMOTE_ADDR": "127.0.0.1"}, "create_order", caller)  # type: ignore[arg-type]
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(ROUNDS):
        environ = {"REMOTE_ADDR": "127.0.0.1"}
        assert limiter.check(environ, "create_order", caller) is None  # type: ignore[arg-type]
        environ[rate_limits.DECISION].headers()
    return (
        (time.perf_counter() - wall) / ROUNDS * 1e6,
        (time.process_time() - cpu) / ROUNDS * 1e6,
    )


def main() -> None:
    redis_url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/15"
    with tempfile.TemporaryDirectory() as folder:
        write_signing_key(Path(folder) / "jwks.json")
        settings = auth_settings({"AUTH_JWKS_FILE": str(Path(folder) / "jwks.json")})
        verifier = auth.TokenVerifier(settings)
        caller = verifier.verify(mint(settings, ["orders:write"], subject="bench"))
        spec = yaml.safe_load((SPEC_DIR / "order.yaml").read_text())
        for name, url in (("memory", None), ("redis", redis_url)):
            limits = rate_limit_settings({"RATE_LIMIT_FACTOR": "1000000"}, "ORDER", url)
            wall, cpu = cost(rate_limits.Limiter(spec, limits, verifier), caller)
            print(f"{name}: {wall:.0f} µs wall, {cpu:.0f} µs CPU per request")
    redis.Redis.from_url(redis_url).flushdb()


if __name__ == "__main__":
    main()
