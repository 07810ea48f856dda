"""asyncapi/events.yaml, the event contract: valid by AsyncAPI's own parser (npm's
@asyncapi/parser, installed by `make node_modules/.installed` from package-lock.json), its
examples valid by its own schemas, and the services' code within it: each publishes only the
types its send operations declare, and binds its queues only to what its receive operations
declare. What the services write to their outboxes during the tests is checked against it by
tests/conftest.py."""

import ast
import shutil
import subprocess
from pathlib import Path

import fastjsonschema
import pika
import pytest
import yaml

from service_kit.messaging import amqp, events
from tests.conftest import infra_required

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = ROOT / "contract_tests" / "validate_asyncapi.mjs"


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[str, list[str]]:
    """The parser's lines on the contract and on a broken copy of it (one node process)."""
    if shutil.which("node") is None or not (ROOT / "node_modules/@asyncapi/parser").is_dir():
        message = "node or node_modules/@asyncapi/parser missing: make node_modules/.installed"
        if infra_required():
            pytest.fail(message)
        pytest.skip(message)
    # Broken: an operation with an action AsyncAPI does not know, and one naming a message its
    # channel does not carry.
    document = yaml.safe_load(events.CONTRACT_FILE.read_text())
    document["operations"]["publishOrderCreated"]["action"] = "publish"
    document["operations"]["settleOrders"]["messages"][0]["$ref"] += "Typo"
    broken = tmp_path_factory.mktemp("asyncapi") / "broken.yaml"
    broken.write_text(yaml.safe_dump(document))
    result = subprocess.run(
        ["node", str(VALIDATOR), str(events.CONTRACT_FILE), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # the broken copy
    lines = result.stdout.splitlines()
    return {
        name: [line.removeprefix(f"{path}: ") for line in lines if line.startswith(f"{path}: ")]
        for name, path in (("contract", events.CONTRACT_FILE), ("broken", broken))
    }


def test_the_contract_passes_asyncapis_own_parser(verdicts):
    lines = verdicts["contract"]
    assert lines[-1].startswith("valid AsyncAPI 3.0.0, 11 channels, 14 operations"), lines
    assert not [line for line in lines if line.startswith(("error", "warning"))], lines


def test_the_parser_rejects_a_broken_copy(verdicts):
    lines = verdicts["broken"]
    assert lines[-1] == "INVALID (2 errors)", lines
    errors = "\n".join(line for line in lines if line.startswith("error"))
    assert "publishOrderCreated.action" in errors and "does not exist" in errors


def test_the_old_private_format_is_gone():
    assert not (ROOT / "openapi/events.yaml").exists()
    assert events.CONTRACT_FILE == ROOT / "asyncapi/events.yaml"


def test_every_example_is_valid_by_its_message():
    checked = 0
    for event_type, message in events.messages().items():
        body_valid = fastjsonschema.compile(
            events.message_schema(event_type), formats=events.FORMATS
        )
        headers_valid = fastjsonschema.compile({**events.contract(), **message["headers"]})
        assert message["examples"], event_type
        for example in message["examples"]:
            body_valid(example["payload"])
            headers_valid(example["headers"])
            elements = example["payload"]
            elements = elements if isinstance(elements, list) else [elements]
            assert example["headers"]["event-count"] == len(elements)
            assert {e["type"] for e in elements} == {event_type}
            checked += 1
    assert checked >= len(events.event_types())


def test_each_type_has_one_message_one_send_operation_and_one_publisher():
    assert set(events.messages()) == set(events.event_types())
    published = [t for types in events.publishers().values() for t in types]
    assert sorted(published) == sorted(events.event_types())
    for operation in events.contract()["operations"].values():
        if operation["action"] == "send":
            (message,) = operation["messages"]
            name = events._resolved(message)["name"]
            assert operation["bindings"]["amqp"]["cc"] == [name]  # its routing key


def test_every_queue_has_its_dead_letter_queue_and_the_delivery_limit():
    for queue in events.queues():
        arguments = events.queue_arguments(queue)
        assert arguments["x-queue-type"] == "quorum"
        assert arguments["x-delivery-limit"] == events.MAX_DELIVERIES
        # its service's own dead-letter exchange: no other service reads its dead letters
        assert arguments["x-dead-letter-exchange"] == f"{events.consumers()[queue]}.dead-letter"
        assert arguments["x-dead-letter-routing-key"] == queue
        assert events.queue_arguments(events.dead_letter_queue(queue)) == {"x-queue-type": "quorum"}
    assert events.ordered_queues() == {"order-service.product-changes"}


def _emitted_types(package: str) -> set[str]:
    """The event types a service's code names where it emits events (`emit("…")`,
    `new_event("…")`)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", None))
                in ("emit", "new_event")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


@pytest.mark.parametrize("service", ["product-service", "order-service"])
def test_a_service_emits_only_the_types_its_send_operations_declare(service):
    emitted = _emitted_types(service.replace("-", "_"))
    assert emitted, service
    assert emitted <= set(events.publishers()[service]), emitted - set(events.publishers()[service])


def test_the_check_sees_an_undeclared_type(tmp_path, monkeypatch):
    package = tmp_path / "rogue_service"
    package.mkdir()
    (package / "service.py").write_text('uow.emit("order.cancelled", {})\n')
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert _emitted_types("rogue_service") == {"order.cancelled"}


class _RecordingChannel:
    """A real pika channel that notes what it binds."""

    def __init__(self, channel) -> None:  # noqa: ANN001
        self._channel, self.bound = channel, []

    def queue_bind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.bound.append((exchange, queue, routing_key))
        self._channel.queue_bind(queue, exchange, routing_key=routing_key)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._channel, name)


@pytest.mark.integration
@pytest.mark.parametrize("service", ["product-service", "order-service"])
def test_a_consumer_binds_only_what_its_receive_operations_declare(service, rabbitmq_url):
    received = {
        (events._resolved(op["channel"])["address"], events._resolved(m)["name"])
        for op in events.contract()["operations"].values()
        if op["action"] == "receive" and op["tags"] == [{"name": service}]
        for m in op["messages"]
    }
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = _RecordingChannel(connection.channel())
        assert amqp.declare_topology(channel, owner=service) is channel  # nothing refused
    finally:
        connection.close()
    bound = {(queue, key) for exchange, queue, key in channel.bound if exchange == events.EXCHANGE}
    assert bound == received
    dead = {(queue, key) for exchange, queue, key in channel.bound if exchange != events.EXCHANGE}
    assert dead == {(events.dead_letter_queue(q), q) for q, _ in received}
