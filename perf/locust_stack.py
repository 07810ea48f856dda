"""`make locust-stack SCENARIO=seed-1000`: one Locust scenario (perf/locustfile.py), headless,
against the real stack started for it (perf/real_stack.py: MariaDB with durable commits, Redis,
RabbitMQ). Locust's CSV files and HTML report go to perf/reports/; the exit code is Locust's
(1 when scenario (a) or (b) misses its thresholds)."""

import argparse
import datetime
import os
import subprocess
import sys
from pathlib import Path

from devstack import throwaway
from devstack.processes import ROOT
from devstack.real_stack import real_stack

REPORTS = ROOT / "perf" / "reports"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["seed-1000", "seed-2000", "reads", "mixed"])
    parser.add_argument("--run-time", default="60s", help="for the scenarios without a shape")
    args = parser.parse_args()
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    report = REPORTS / f"locust-{args.scenario}-{stamp}"
    with real_stack() as stack:
        env = {
            **os.environ,
            "SCENARIO": args.scenario,
            "PRODUCT_URL": stack.services.product_url,
            "ORDER_URL": stack.services.order_url,
            "TOKEN": throwaway.bearer(stack.services.env)["Authorization"].removeprefix("Bearer "),
        }
        command = [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            "perf/locustfile.py",
            "--headless",
            "--only-summary",
            "--users",
            "10",
            "--spawn-rate",
            "10",
            "--run-time",
            args.run_time,
            "--csv",
            str(report),
            "--html",
            f"{report}.html",
        ]
        exit_code = subprocess.run(command, cwd=ROOT, env=env).returncode
    print(f"reports: {report.relative_to(ROOT)}_stats.csv, {report.relative_to(ROOT)}.html")
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
