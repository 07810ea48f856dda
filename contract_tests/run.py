"""Contract tests: Schemathesis fuzzes openapi/order.yaml and openapi/product.yaml against both
services running as real processes (web + workers, as `make run` starts them), on the real
MariaDB, Redis and RabbitMQ of this machine in throw-away databases / vhost, or on the embedded
defaults when those servers are absent (not allowed with REQUIRE_INFRA=1).

All checks, all phases (examples, coverage, fuzzing, stateful through the specs' links),
positive and negative data, a fixed seed. Prints a report and exits non-zero on any failure.

    make contract                          # CONTRACT_EXAMPLES=100 per operation and phase
    make contract CONTRACT_EXAMPLES=1000   # a longer run
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack import throwaway
from devstack.processes import running_stack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORTS = HERE / "reports"
SPECS = {"order-service": "openapi/order.yaml", "product-service": "openapi/product.yaml"}


@dataclass
class SpecResult:
    name: str
    operations_total: int
    operations_tested: int
    cases: int
    failures: list[dict]
    errors: list
    phases: dict[str, str]
    answers: dict[str, int] = field(default_factory=dict)
    stateful: str = ""
    warnings: list[str] = field(default_factory=list)


@contextlib.contextmanager
def service_environment(folder: Path) -> Iterator[tuple[str, dict[str, str]]]:
    try:
        with throwaway.mysql_databases() as databases, throwaway.rabbitmq_vhost() as broker:
            env = throwaway.embedded_env(folder, databases)
            env.update(REDIS_URL=throwaway.redis_database(), BROKER_URL=broker)
            yield "MariaDB + Redis + RabbitMQ", env
            return
    except throwaway.Unavailable as exc:
        if os.environ.get("REQUIRE_INFRA") == "1":
            raise
        print(f"contract tests: {exc}; using the embedded defaults", file=sys.stderr)
    yield "embedded defaults", throwaway.embedded_env(folder, throwaway.sqlite_databases(folder))


def seed_data(product_url: str, authorization: dict[str, str]) -> None:
    # The specs' examples order product 1: make it exist, with stock enough for every case.
    response = httpx.post(
        f"{product_url}/products",
        json={"name": "Contract seed", "price": 1500, "qty": 10**9},
        headers=authorization,
    )
    response.raise_for_status()


def run_schemathesis(
    name: str, spec: str, base_url: str, examples: int, seed: int, authorization: str
) -> SpecResult:
    report = REPORTS / f"{name}.json"
    # Per-spec settings (e.g. order-service.toml); named so Schemathesis never finds one by itself.
    config = HERE / f"{name}.toml"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        *(["--config-file", str(config)] if config.exists() else []),
        "run",
        str(ROOT / spec),
        "--url",
        base_url,
        # Authenticated: every check runs, ignored_auth among them (each secured operation
        # without this header, or with a bad one, must not succeed).
        "--header",
        f"Authorization: {authorization}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--mode",
        "all",
        "--seed",
        str(seed),
        "--max-examples",
        str(examples),
        "--request-timeout",
        "15",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPORTS)
    (REPORTS / f"{name}.txt").write_text(completed.stdout + completed.stderr)
    data = json.loads(report.read_text())
    answers = {"accepted": 0, "rejected": 0}
    for phases in data.get("valid_rates", {}).values():
        for counts in phases.values():
            answers["accepted"] += counts.get("accepted", 0)
            answers["rejected"] += counts.get("rejected", 0)
    stateful = re.search(
        r"Scenarios:\s+(\d+)\s+API Links:\s+(\d+) covered / (\d+)", completed.stdout
    )
    return SpecResult(
        name=name,
        operations_total=data["operations"]["total"],
        operations_tested=data["operations"]["tested"],
        cases=data["test_cases"]["generated"],
        failures=data["failures"],
        errors=data["errors"],
        phases={phase: info["status"] for phase, info in data["phases"].items()},
        answers=answers,
        stateful=(
            f"{stateful[1]} scenarios, {stateful[2]}/{stateful[3]} links" if stateful else "none"
        ),
        warnings=[kind for kind, items in data["warnings"].items() if items],
    )


def run_suite(examples: int, seed: int) -> tuple[str, list[SpecResult]]:
    REPORTS.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as folder,
        service_environment(Path(folder)) as (
            where,
            env,
        ),
        running_stack(env, Path(folder)) as stack,
    ):
        authorization = throwaway.bearer(env)
        seed_data(stack.product_url, authorization)
        urls = {"order-service": stack.order_url, "product-service": stack.product_url}
        results = [
            run_schemathesis(name, spec, urls[name], examples, seed, authorization["Authorization"])
            for name, spec in SPECS.items()
        ]
    return where, results


def print_report(where: str, results: list[SpecResult], examples: int, seed: int) -> None:
    print(f"\nContract tests on {where} (seed {seed}, up to {examples} examples per phase)")
    print("(valid→2xx / valid→4xx: how schema-valid cases were answered; the rest are negative)")
    header = f"{'spec':<17}{'operations':>11}{'cases':>8}{'valid→2xx':>11}{'valid→4xx':>11}"
    print(f"{header}  {'stateful':<28}failures")
    for r in results:
        print(
            f"{r.name:<17}{f'{r.operations_tested}/{r.operations_total}':>11}{r.cases:>8}"
            f"{r.answers['accepted']:>11}{r.answers['rejected']:>11}  {r.stateful:<28}"
            f"{len(r.failures) + len(r.errors)}"
        )
        for failure in r.failures:
            print(f"    {failure['code']} {failure['title']}: {', '.join(failure['operations'])}")
        for error in r.errors:
            print(f"    error: {error}")
        if r.warnings:
            print(f"    warnings: {', '.join(r.warnings)}")
    total = sum(r.cases for r in results)
    failed = sum(len(r.failures) + len(r.errors) for r in results)
    print(f"total: {total} cases, {failed} failures; details in {REPORTS.relative_to(ROOT)}/\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples", type=int, default=int(os.environ.get("CONTRACT_EXAMPLES", 100))
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CONTRACT_SEED", 20261121)))
    args = parser.parse_args()
    where, results = run_suite(args.examples, args.seed)
    print_report(where, results, args.examples, args.seed)
    sys.exit(1 if any(r.failures or r.errors for r in results) else 0)


if __name__ == "__main__":
    main()
