"""Schemathesis contract tests against the running stack (see run.py)."""
