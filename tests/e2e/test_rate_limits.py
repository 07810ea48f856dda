"""Two instances of the services, each with two web workers, as real processes on one Redis:
one client's quota is one, whichever process serves it (issue 27)."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from devstack import throwaway
from devstack.processes import running_stack
from service_kit.config import auth_settings
from service_kit.http.dev_tokens import mint

pytestmark = pytest.mark.e2e
QUOTA = 8


def test_two_instances_of_two_web_workers_share_one_limit(tmp_path, redis_url):
    env = {
        **throwaway.embedded_env(tmp_path, throwaway.sqlite_databases(tmp_path)),
        "REDIS_URL": redis_url,
        "ORDER_WEB_WORKERS": "2",
        "RATE_LIMIT_FACTOR": "1",
        "ORDER_RATE_LIMITS": f"order-writes={QUOTA}/60",
    }
    token = mint(auth_settings(env), ["orders:write"], subject=f"e2e-{uuid.uuid4().hex[:8]}")
    who = {"Authorization": f"Bearer {token}"}
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    with (
        running_stack(env, tmp_path / "one") as one,
        running_stack(env, tmp_path / "two") as two,
    ):
        urls = [one.order_url, two.order_url]

        def order(n: int) -> httpx.Response:
            # A connection of its own each: the instances' web workers take them as they come.
            return httpx.post(
                f"{urls[n % 2]}/orders", json={"productId": 2147483000, "qty": 1}, headers=who
            )

        with ThreadPoolExecutor(QUOTA) as pool:
            answers = list(pool.map(order, range(QUOTA)))
        assert [a.status_code for a in answers] == [422] * QUOTA  # no such product: counted
        left = sorted(
            int(a.headers["RateLimit"].rpartition(";r=")[2].split(";")[0]) for a in answers
        )
        assert min(left) == 0 and max(left) < QUOTA  # each read right after its own unit
        for n in (0, 1):
            refused = order(n)
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
