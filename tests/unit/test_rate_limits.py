"""The parts of rate limiting that need no server: the policies compiled from a spec with a
deployment's overrides, the client's address behind trusted proxies, the Retry-After arithmetic
of the sliding window, and the fields' syntax (the integration tests run the limiter)."""

import ipaddress
import threading

import http_sfv
import pytest

from service_kit.config import ConfigError, rate_limit_settings
from service_kit.http.rate_limits import (
    Decision,
    Policy,
    _standing,
    client_address,
    compile_policies,
)

SPEC = {
    "x-rate-limits": [{"name": "per-client", "quota": 100, "window": 60}],
    "paths": {
        "/a": {
            "get": {"operationId": "read_a"},
            "post": {
                "operationId": "write_a",
                "x-rate-limits": [{"name": "writes", "quota": 10, "window": 1}],
            },
        },
        "/health": {"get": {"operationId": "health", "x-rate-limits": []}},
    },
}


def settings(**env: str):
    return rate_limit_settings(env, "ORDER", None)


def test_operations_take_their_own_policies_else_the_documents():
    policies = compile_policies(SPEC, settings())
    assert policies == {
        "read_a": (Policy("per-client", 100, 60),),
        "write_a": (Policy("writes", 10, 1),),
        "health": (),
    }


def test_a_deployment_overrides_and_multiplies_quotas():
    env = {"ORDER_RATE_LIMITS": "writes=5/2", "RATE_LIMIT_FACTOR": "3"}
    policies = compile_policies(SPEC, settings(**env))
    assert policies["write_a"] == (Policy("writes", 15, 2),)
    assert policies["read_a"] == (Policy("per-client", 300, 60),)


def test_an_override_of_no_policy_stops_the_start():
    with pytest.raises(ConfigError, match="writs"):
        compile_policies(SPEC, settings(ORDER_RATE_LIMITS="writs=5/2"))


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "Bad Name", "quota": 1, "window": 1},
        {"name": "a", "quota": 0, "window": 1},
        {"name": "a", "quota": 1, "window": "60s"},
        {"name": "a", "quota": 1},
    ],
)
def test_malformed_declarations_stop_the_start(entry):
    spec = {"paths": {"/a": {"get": {"operationId": "a", "x-rate-limits": [entry]}}}}
    with pytest.raises(ValueError):
        compile_policies(spec, settings())


def test_one_policy_is_declared_once():
    spec = {
        "x-rate-limits": [{"name": "p", "quota": 1, "window": 1}],
        "paths": {
            "/a": {
                "get": {"operationId": "a"},
                "put": {
                    "operationId": "b",
                    "x-rate-limits": [{"name": "p", "quota": 2, "window": 1}],
                },
            }
        },
    }
    with pytest.raises(ValueError, match="differently"):
        compile_policies(spec, settings())


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("environ", "client"),
    [
        ({"REMOTE_ADDR": "203.0.113.5"}, "203.0.113.5"),
        # a client that is not a trusted proxy cannot name another address
        ({"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "203.0.113.5"),
        ({"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "198.51.100.1"),
        # what the client wrote itself, left of the nearest untrusted hop, is not believed
        (
            {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 198.51.100.1, 10.9.9.9"},
            "198.51.100.1",
        ),
        (
            {
                "REMOTE_ADDR": "10.1.2.3",
                "HTTP_FORWARDED": 'for=1.1.1.1, for="[2001:db8::7]:443";proto=https',
            },
            "2001:db8::7",
        ),
        ({"REMOTE_ADDR": "10.1.2.3", "HTTP_FORWARDED": "for=198.51.100.1:8080"}, "198.51.100.1"),
        ({"REMOTE_ADDR": "10.1.2.3", "HTTP_FORWARDED": "for=unknown"}, "unknown"),
        ({"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "10.4.4.4"}, "10.4.4.4"),
        ({"REMOTE_ADDR": "10.1.2.3"}, "10.1.2.3"),
    ],
)
def test_the_client_address_behind_trusted_proxies(environ, client):
    assert client_address(environ, TRUSTED) == client


def test_without_trusted_proxies_the_socket_decides():
    environ = {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}
    assert client_address(environ, ()) == "10.1.2.3"


def test_retry_after_waits_until_the_window_admits_again():
    policy = Policy("p", 10, 60)
    # 10 taken in this window, 40 s before it ends: refused until then (the 10 then weigh a
    # little less than 10 at once)
    assert _standing(policy, False, 0, 0.0, 10, 60 + 40.0) == (0, 40, 40)
    # 12 taken (another process raced it): until 2/12 of the next window slid out too
    assert _standing(policy, False, 0, 0.0, 12, 60 + 40.0) == (0, 50, 50)
    # 4 in this window, 10 in the previous one with 30 s of it left: 5 + 4 = 9 weighted, one
    # unit left, and one more frees as soon as 6 s of the previous one slide out
    assert _standing(policy, True, 10, 30.0, 4, 60 + 50.0)[0] == 1
    left, _, wait = _standing(policy, False, 10, 36.6, 4, 60 + 50.0)
    assert left == 0 and wait == 1  # 6.1 + 4 weighted: a unit frees in 0.6 s


def test_the_fields_are_structured_field_lists():
    a, b = Policy("burst", 100, 60), Policy("daily", 5000, 86400)
    decision = Decision(f"{a.field}, {b.field}", ((a, 42, 17), (b, 4000, 3600)))
    fields = dict(decision.headers())
    policy, current = http_sfv.List(), http_sfv.List()
    policy.parse(fields["RateLimit-Policy"].encode())
    current.parse(fields["RateLimit"].encode())
    assert [(i.value, dict(i.params)) for i in policy] == [
        ("burst", {"q": 100, "w": 60}),
        ("daily", {"q": 5000, "w": 86400}),
    ]
    assert [(i.value, dict(i.params)) for i in current] == [
        ("burst", {"r": 42, "t": 17}),
        ("daily", {"r": 4000, "t": 3600}),
    ]


class CountedStorage:
    """The `limits` memory storage, counting the trips a limiter makes to it."""

    def __init__(self) -> None:
        from limits.storage import MemoryStorage

        self.storage = MemoryStorage()
        self.trips = 0

    def acquire_sliding_window_entry(self, *args, **kwargs):  # noqa: ANN002, ANN003
        self.trips += 1
        return self.storage.acquire_sliding_window_entry(*args, **kwargs)

    def get_sliding_window(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return self.storage.get_sliding_window(*args, **kwargs)


def test_a_busy_client_takes_its_units_in_leases_and_never_more_than_the_quota():
    from service_kit.http.rate_limits import _Windows

    policy = Policy("burst", 2000, 60)
    shared = CountedStorage()
    processes = [_Windows(shared), _Windows(shared)]  # two web workers on one window

    def admitted(requests: int) -> int:
        return sum(processes[n % 2].hit([("burst/s:alice", policy)])[0][0] for n in range(requests))

    # Leases of up to 1% of the quota: a few dozen trips, not one per request.
    assert admitted(1900) == 1900
    assert shared.trips < 150
    # Together never more than the quota, and at most a lease per process left unspent.
    assert 100 - 2 * 20 <= admitted(700) <= 100


def test_a_leased_unit_counts_down_the_standing_one_by_one():
    from service_kit.http.rate_limits import _Windows

    policy = Policy("burst", 1000, 60)
    windows = _Windows(CountedStorage())
    left = [
        _standing(policy, acquired, *window)[0]
        for acquired, window in (windows.hit([("burst/a:1", policy)])[0] for _ in range(40))
    ]
    assert left == list(range(999, 959, -1))


class HeldStorage(CountedStorage):
    """A storage whose next trip waits until released, as a Redis round trip under load does
    while the client's other requests come in."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()

    def acquire_sliding_window_entry(self, *args, **kwargs):  # noqa: ANN002, ANN003
        if self.hold.is_set():
            self.hold.clear()
            self.held.set()
            assert self.release.wait(5)
        return super().acquire_sliding_window_entry(*args, **kwargs)


def units_taken(storage: CountedStorage, key: str, policy: Policy) -> int:
    previous, _, current, _ = storage.storage.get_sliding_window(key, policy.window_s)
    return previous + current


def test_requests_meanwhile_never_replace_the_lease_being_taken(monkeypatch):
    from service_kit.http import rate_limits

    monkeypatch.setattr(rate_limits.time, "monotonic", lambda: 1000.0)  # no lease lapses
    policy, key = Policy("burst", 1_000_000, 60), "burst/s:alice"
    shared = HeldStorage()
    windows = rate_limits._Windows(shared)
    admitted = sum(windows.hit([(key, policy)])[0][0] for _ in range(100))  # leases grow
    shared.hold.set()
    while windows._leases[key].left:  # spend the lease in hand: the next request takes one
        admitted += windows.hit([(key, policy)])[0][0]
    taking = threading.Thread(target=lambda: windows.hit([(key, policy)]))
    taking.start()
    assert shared.held.wait(5)  # it is taking the lease
    trips = shared.trips
    meanwhile = sum(windows.hit([(key, policy)])[0][0] for _ in range(50))
    shared.release.set()
    taking.join()
    # Every unit taken from the window is spent or in the lease in hand: none was replaced
    # with its units unspent (a lease taken meanwhile had been, its units counted spent).
    unspent = units_taken(shared, key, policy) - (admitted + meanwhile + 1)
    assert unspent == windows._leases[key].left
    # Meanwhile a unit each, no lease of their own.
    assert meanwhile == 50
    assert shared.trips - trips == 50 + 1


def test_a_client_at_a_steady_rate_lets_no_lease_lapse(monkeypatch):
    from service_kit.http import rate_limits

    clock = [1000.0]
    monkeypatch.setattr(rate_limits.time, "monotonic", lambda: clock[0])
    policy = Policy("burst", 10_000_000, 60)
    shared = CountedStorage()
    windows = rate_limits._Windows(shared)
    for _ in range(14_000):  # 1400 requests/s for 10 s
        clock[0] += 1 / 1400
        assert windows.hit([("burst/s:bob", policy)])[0][0]
    # Leases grow while they are spent within half their time, so none lapses: the window
    # counts the requests and the lease in hand (a second of them at most). Leases that
    # doubled whenever spent within their time lapsed every few seconds: 3407 units unspent.
    assert units_taken(shared, "burst/s:bob", policy) - 14_000 <= 1400
    assert shared.trips < 40
