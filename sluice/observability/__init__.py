"""Prometheus metrics observed from channel events, structured JSON logs, dashboard statistics."""
