"""The bounded contract run of `make test`: every operation of both specs, all checks and
phases, positive and negative data, stateful sequences; zero failures. `make contract` runs
the same suite longer."""

from contract_tests.run import print_report, run_suite

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
