"""The Locust scenarios run against the real stack for a few seconds: the file works, setup
creates its stock, reports are written. (Throughput is `make bench`'s business, not a test's.)"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.processes import ROOT, running_stack
from devstack.throwaway import bearer, embedded_env, sqlite_databases


@pytest.fixture
def stack(tmp_path):
    # As `make bench` runs them: no access log line per request.
    env = embedded_env(tmp_path, sqlite_databases(tmp_path))
    env.update(PRODUCT_ACCESS_LOG="0", ORDER_ACCESS_LOG="0")
    with running_stack(env, tmp_path) as running:
        yield running


@pytest.mark.parametrize(
    ("scenario", "options"),
    [
        ("seed-1000", []),  # its own shape, scaled down to a few seconds at 50/s
        ("mixed", ["--users", "2", "--spawn-rate", "2", "--run-time", "4s"]),
        # Distributed: a master and two worker processes, each with its own stock.
        ("seed-1000", ["--processes", "2"]),
    ],
)
def test_scenario_runs_and_reports(stack, tmp_path, scenario, options):
    env = {
        **os.environ,
        "SCENARIO": scenario,
        "PRODUCT_URL": stack.product_url,
        "ORDER_URL": stack.order_url,
        "TOKEN": bearer(stack.env)["Authorization"].removeprefix("Bearer "),
        "LOCUST_SHAPE_SCALE": "0.05",
    }
    report = tmp_path / scenario
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            "perf/locustfile.py",
            "--headless",
            "--only-summary",
            *options,
            "--csv",
            str(report),
            "--html",
            f"{report}.html",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    with open(f"{report}_stats.csv") as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    assert int(total["Request Count"]) > 0 and int(total["Failure Count"]) == 0
    assert "<html" in Path(f"{report}.html").read_text()[:1000].lower()
    for service in ("product", "order"):
        assert "gunicorn.access" not in stack.log_of(service)
