"""Telemetry both services share: Prometheus metrics (metrics.py) and OpenTelemetry trace
context (tracing.py), used by every other room of the kit; it depends on the core only."""
