"""The README's curl tour, as a user pastes it, on ports other than the defaults and twice in
a row (SQLite): every step answers as its comment says, ids are never given twice, and each
product's with-orders shows its own orders only, money with two decimals."""

import json
import os
import re
import subprocess

import pytest

from devstack.processes import ROOT, running_stack

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

STATUSES = [200, 201, 200, 200, 200, 200, 200, 204, 404, 400, 401]  # the tour's `curl -i` steps


def tour() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\nP=http://localhost:")
    return readme[start : readme.index("\n```", start)]


def answers(output: str) -> list[tuple[int, dict | None]]:
    """Each `curl -i` answer: its status and its JSON body, if any."""
    found = []
    # A body ends without a newline: the next answer's status line follows on the same line.
    for part in re.split(r"(?=HTTP/1\.1 \d{3} )", output)[1:]:
        status = int(part.split()[1])
        body = part.split("\n\n", 1)[1].strip() if "\n\n" in part else ""
        found.append((status, json.loads(body) if body.startswith("{") else None))
    return found


def test_the_tour_twice_on_other_ports(service_env, tmp_path):
    with running_stack(service_env, tmp_path) as stack:
        env = {**stack.process_env, "PATH": os.environ["PATH"]}
        assert env["PRODUCT_PORT"] != "3000" and env["ORDER_PORT"] != "4000"
        runs = []
        for _ in range(2):
            completed = subprocess.run(
                ["bash", "-e", "-c", tour()],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert completed.returncode == 0, completed.stderr
            runs.append(answers(completed.stdout))
            # Money as the tour's comments show it, two decimals.
            assert '"price":1500.00' in completed.stdout, completed.stdout
            assert '"totalPrice":3000.00' in completed.stdout, completed.stdout
    product_ids, order_ids = [], []
    for run in runs:
        assert [status for status, _ in run] == STATUSES, run
        product, order = run[0][1], run[1][1]
        product_ids.append(product["id"])
        order_ids.append(order["id"])
        listed, with_orders, seen_by_bob = run[2][1], run[3][1], run[4][1]
        assert [o["id"] for o in listed["items"]] == [order["id"]]
        assert [o["productId"] for o in with_orders["orders"]["items"]] == [product["id"]]
        assert seen_by_bob["items"] == []  # another subject's orders are not his
    assert len(set(product_ids)) == 2 and len(set(order_ids)) == 2
