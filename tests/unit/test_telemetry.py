"""Trace context and log lines without an exporter: a caller's W3C context is continued, put
into the events it causes and read back from them, a malformed one is ignored, and JSON log
lines carry the ids; spans are made only when an exporter is configured."""

import json
import logging

import pytest

from service_kit import logs, request_id
from service_kit.messaging import consumer
from service_kit.messaging.events import new_event, read_message
from service_kit.telemetry import tracing

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def no_context():
    tracing.continue_from({})
    yield
    tracing.continue_from({})


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "none"},
    ],
)
def test_no_span_is_made_without_an_exporter(env):
    tracing.configure("test-service", env)
    assert not tracing.recording()
    with tracing.span("anything") as span:
        assert span is None


def test_a_callers_context_flows_into_the_events_it_causes_and_out_of_them():
    assert tracing.current() == {} and tracing.ids() is None
    tracing.continue_from({"traceparent": TRACEPARENT, "tracestate": "vendor=1"})
    assert tracing.ids() == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    event = new_event("product.deleted", {"id": 7})
    assert event.trace == {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    tracing.continue_from({})
    (read,), problems = read_message(event.to_json().encode(), "product.deleted")
    assert problems == [] and read.trace == event.trace
    for _ in consumer.each([read]):  # a consumer applying it continues its trace
        assert tracing.current() == event.trace
    assert tracing.current() == {}  # and leaves none behind for what follows the batch


@pytest.mark.parametrize("traceparent", ["00-xyz", "00-" + "0" * 32 + "-" + "1" * 16 + "-01"])
def test_a_malformed_or_invalid_context_is_no_context(traceparent):
    tracing.continue_from({"traceparent": traceparent})
    assert tracing.ids() is None
    assert "traceparent" not in new_event("product.deleted", {"id": 7}).to_json()


def test_an_event_claiming_a_malformed_context_is_poison():
    body = json.loads(new_event("product.deleted", {"id": 7}).to_json())
    body["traceparent"] = "not a trace context"
    events, problems = read_message(json.dumps(body).encode(), "product.deleted")
    assert events == [] and problems


def test_json_log_lines_carry_the_request_the_trace_and_the_event():
    formatter = logs.JsonFormatter()
    record = logging.LogRecord("orders", logging.INFO, __file__, 1, "placed %s", (3,), None)
    request_id.bind("req-1")
    assert json.loads(formatter.format(record)).keys() == {
        "time", "level", "logger", "message", "process", "request_id",
    }  # fmt: skip
    tracing.continue_from({"traceparent": TRACEPARENT})
    logs.bind_event("01890000-0000-7000-8000-000000000000")
    try:
        line = json.loads(formatter.format(record))
    finally:
        logs.bind_event(None)
    assert line["message"] == "placed 3" and line["level"] == "INFO"
    assert line["request_id"] == "req-1"
    assert (line["trace_id"], line["span_id"]) == tracing.ids()
    assert line["event_id"] == "01890000-0000-7000-8000-000000000000"


def test_every_garbage_collection_is_timed_once_per_process():
    import gc

    from service_kit.telemetry import metrics

    def observed(generation: int) -> float:
        return (
            metrics.REGISTRY.get_sample_value(
                "python_gc_pause_seconds_count", {"generation": str(generation)}
            )
            or 0.0
        )

    metrics.time_gc_pauses()
    metrics.time_gc_pauses()  # a second call adds no second callback
    before = observed(2)
    gc.collect()
    assert observed(2) == before + 1
