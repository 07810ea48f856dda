"""A database that cannot be reached at start-up: the migrations and each worker say so in one
line, naming the database with its password hidden and the driver's reason, and exit 1 (make
run's supervisor, or the orchestrator, starts them again), rather than a traceback."""

import os
import subprocess
import sys

import pytest

from devstack.processes import ROOT, free_port

COMMANDS = {
    "product migrations": ["-m", "product_service.migrate"],
    "order migrations": ["-m", "order_service.migrate"],
    "order schema check": ["-m", "order_service.migrate", "--check"],
    "product worker": ["-m", "product_service.worker"],
    "order worker": ["-m", "order_service.worker"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_database_is_one_line_and_exit_status_1(command, tmp_path):
    closed = free_port()  # nothing listens there
    url = f"mysql+pymysql://someone:s3cret@127.0.0.1:{closed}/db"
    env = {
        **os.environ,
        "PRODUCT_DATABASE_URL": url,
        "ORDER_DATABASE_URL": url,
        "PRODUCT_WORKER_METRICS_PORT": "0",
        "ORDER_WORKER_METRICS_PORT": "0",
        "BROKER_URL": f"sqlite:///{tmp_path}/events.db",
        "CACHE_DIR": str(tmp_path / "cache"),
    }
    completed = subprocess.run(
        [sys.executable, *COMMANDS[command]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    lines = [line for line in completed.stderr.splitlines() if "database" in line]
    assert len(lines) == 1, completed.stderr
    assert f"database mysql+pymysql://someone:***@127.0.0.1:{closed}/db unreachable" in lines[0]
    assert "Connection refused" in lines[0]
    assert "Traceback" not in completed.stderr and "s3cret" not in completed.stderr
