"""The bounded contract run of `make test`: every operation of both specs, all checks and
phases, positive and negative data, stateful sequences; zero failures. `make contract` runs
the same suite longer."""

import subprocess
import sys
from pathlib import Path

import yaml

from contract_tests.run import print_report, run_suite
from devstack import throwaway
from devstack.processes import ROOT, running_stack

EXAMPLES, SEED = 40, 20261121


def test_both_specs_hold_under_fuzzing():
    where, results = run_suite(EXAMPLES, SEED)
    print_report(where, results, EXAMPLES, SEED)
    for result in results:
        assert result.operations_tested == result.operations_total, result.name
        assert result.failures == [] and result.errors == [], result.failures or result.errors
        assert set(result.phases) == {"examples", "coverage", "fuzzing", "stateful"}
        assert all(status == "success" for status in result.phases.values()), result.phases
        assert result.stateful != "none", f"{result.name}: no stateful scenario ran"
    assert sum(result.cases for result in results) >= 1000


def test_the_auth_check_catches_an_operation_that_ignores_its_token(tmp_path):
    # The run above passes `ignored_auth` on every secured operation; here the check is shown
    # to bite: a spec that claims a token for /health, which the service serves to anyone.
    env = throwaway.embedded_env(tmp_path, throwaway.sqlite_databases(tmp_path))
    spec = yaml.safe_load((ROOT / "openapi/order.yaml").read_text())
    spec["paths"]["/health"]["get"]["security"] = [{"bearer": ["orders:read"]}]
    (tmp_path / "claims-more.yaml").write_text(yaml.safe_dump(spec))
    with running_stack(env, tmp_path) as stack:
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            str(tmp_path / "claims-more.yaml"),
            "--url",
            stack.order_url,
            "--checks",
            "ignored_auth",
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            "5",
            "--include-operation-id",
            "health",
            "--header",
            f"Authorization: {throwaway.bearer(env)['Authorization']}",
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0
    assert "API accepts requests without authentication" in completed.stdout
