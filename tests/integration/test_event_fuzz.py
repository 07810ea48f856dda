"""The event fuzzer's short pass (contract_tests/event_fuzz.py) on this machine's MariaDB, Redis
and RabbitMQ, with a fixed seed: every property holds. make contract-events runs it longer."""

import pytest

from contract_tests import event_fuzz
from devstack import throwaway

EXAMPLES, SEED = 7, 20261203  # 7: each mutation once per type


@pytest.mark.integration
def test_the_consumers_hold_the_contract_under_fuzzing(redis_url, rabbitmq_url, tmp_path):
    # Databases of its own, and the cache emptied after it: the fuzzed products' knowledge
    # (prices, versions of made-up ids) must not reach the tests after it.
    with throwaway.mysql_databases() as databases:
        env = throwaway.embedded_env(tmp_path, databases)
        env |= {"REDIS_URL": redis_url, "BROKER_URL": rabbitmq_url}
        try:
            report = event_fuzz.run(event_fuzz.open_stack(env), EXAMPLES, SEED, within_s=60)
        finally:
            throwaway.redis_database()
    print("\n".join(report.lines()))
    assert report.failures == []
    received = {t for types in event_fuzz.events.queues().values() for t in types}
    assert set(report.generated) == received
    assert all(report.generated[t] == EXAMPLES for t in received)
    assert report.kinds["valid"] == EXAMPLES * len(received)
    assert all(report.kinds[m.__name__] for m in event_fuzz.MUTATIONS)
    assert report.kinds["pack-mixing-types"] and report.kinds["duplicate"]
    assert report.kinds["out-of-order"] == 2
    assert sum(report.dead_lettered.values()) >= len(event_fuzz.NOT_EVENTS) * len(received)
