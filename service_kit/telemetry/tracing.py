"""OpenTelemetry traces with W3C trace context (`traceparent`, `tracestate`).

The context of a request travels on: into the outgoing calls it makes, into the events it
causes (stored with them in the outbox, carried in their envelopes over the broker), and into
the work of the consumers that apply them, which continue it. With no exporter configured no
span is made at all (nothing is recorded, nothing costs): the context a caller sent still
flows, unchanged, so its trace id is in the log lines of every process that does the request's
work. With OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) set, spans are recorded,
sampled as OTEL_TRACES_SAMPLER says, and exported over OTLP/HTTP; the other OTEL_* variables
(service name, resource attributes, headers) are the SDK's own."""

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Carrier = Mapping[str, str]  # traceparent (and tracestate), as in a header or an envelope
TRACEPARENT, TRACESTATE = "traceparent", "tracestate"
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("order-product")
_log = logging.getLogger(__name__)
_recording = False  # spans are made (an SDK with an exporter is installed)


def configure(service_name: str, env: Mapping[str, str] = os.environ) -> None:
    """Spans exported over OTLP when an endpoint is configured; else none made. Called once
    per process, after gunicorn forks (the SDK's export thread belongs to the worker)."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return
    if env.get("OTEL_TRACES_EXPORTER", "otlp") == "none":
        return
    if not (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    install(service_name, BatchSpanProcessor(OTLPSpanExporter()), env)
    _log.info("tracing: spans exported over OTLP")


def install(service_name: str, processor: Any, env: Mapping[str, str] = os.environ) -> None:
    """Record spans and hand them to `processor` (an exporter's, or a test's in memory)."""
    global _recording
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _recording = True


def recording() -> bool:
    return _recording


# W3C trace context's limits on tracestate, which events.yaml's envelope holds it to: what a
# caller sends beyond them would make every event of its request invalid (dead-lettered).
MAX_TRACESTATE_CHARS = 512
_LARGE_MEMBER_CHARS = 128  # the members W3C says to drop first


def bounded_tracestate(header: str) -> str | None:
    """A tracestate within W3C's limits: at most 32 valid members (else none, as
    OpenTelemetry reads it) and 512 characters, members over 128 characters dropped first,
    then the last ones; None when nothing is left."""
    members = [f"{key}={value}" for key, value in TraceState.from_header([header]).items()]

    def size() -> int:
        return sum(map(len, members)) + max(len(members) - 1, 0)

    while size() > MAX_TRACESTATE_CHARS and any(len(m) > _LARGE_MEMBER_CHARS for m in members):
        large = next(m for m in reversed(members) if len(m) > _LARGE_MEMBER_CHARS)
        members.remove(large)
    while size() > MAX_TRACESTATE_CHARS:
        members.pop()
    return ",".join(members) or None


def context_of(carrier: Carrier) -> context.Context:
    """The context a carrier holds (an empty one for none or a malformed one), its tracestate
    bounded (`bounded_tracestate`)."""
    if TRACEPARENT not in carrier:
        return context.Context()
    state = carrier.get(TRACESTATE)
    if state is not None and len(state) > MAX_TRACESTATE_CHARS:
        carrier = {TRACEPARENT: carrier[TRACEPARENT]}
        if bounded := bounded_tracestate(state):
            carrier[TRACESTATE] = bounded
    return _propagator.extract(carrier, context=context.Context())


def continue_from(carrier: Carrier) -> None:
    """Make the carrier's context the current one of this request, event or greenlet, so that
    its log lines, outgoing calls and events carry it. Left in place: the next request or event
    handled here replaces it."""
    if TRACEPARENT in carrier or trace.get_current_span().get_span_context().is_valid:
        context.attach(context_of(carrier))


def current() -> dict[str, str]:
    """The current context as a carrier: empty when there is none."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def inject(headers: MutableMapping[str, str]) -> None:
    """Send the current context on with an outgoing call."""
    if trace.get_current_span().get_span_context().is_valid:
        _propagator.inject(headers)


def ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current context in hex, for log lines; None outside one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def start_server_span(carrier: Carrier, method: str) -> Span:
    """A request's span (recording only), a child of the caller's context, made current."""
    span = _tracer.start_span(
        method, context=context_of(carrier), kind=SpanKind.SERVER, attributes={}
    )
    context.attach(trace.set_span_in_context(span, context.Context()))
    return span


def start_span(
    name: str, carrier: Carrier, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any
) -> Span:
    """A span (recording only) continuing a carrier's context, not made current: for work
    done for many requests or events at once (a relay's batch, a consumer's)."""
    return _tracer.start_span(name, context=context_of(carrier), kind=kind, attributes=attributes)


def carrier_of(span: Span) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span, context.Context()))
    return carrier


@contextlib.contextmanager
def span(name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> Iterator[Any]:
    """A child span of the current context, current within the block; nothing (None) when no
    spans are recorded."""
    if not _recording:
        yield None
        return
    with _tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current_span:
        yield current_span
