"""A worker stops on bursts of SIGTERM and SIGINT (its handler only records them; the main
loop stops the tasks), and says so once."""

import os
import signal
import subprocess
import sys
import time

from devstack.processes import ROOT
from devstack.throwaway import sqlite_databases


def test_bursts_of_signals_stop_a_worker(tmp_path):
    urls = sqlite_databases(tmp_path)
    env = {
        **os.environ,
        "PRODUCT_DATABASE_URL": urls["product"],
        "PRODUCT_WORKER_METRICS_PORT": "0",
        "BROKER_URL": f"sqlite:///{tmp_path}/events.db",
        "CACHE_DIR": str(tmp_path / "cache"),
    }
    for run in range(3):
        log = tmp_path / f"worker-{run}.log"
        with log.open("w") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "product_service.worker"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while "running" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            for signum in [signal.SIGTERM, signal.SIGINT] * 4:
                worker.send_signal(signum)
            worker.wait(timeout=20)
        finally:
            worker.kill()
            worker.wait()
        said = log.read_text()
        assert said.count("received, finishing the work in hand") == 1, said
        assert "product-service worker: stopped" in said and "Traceback" not in said
