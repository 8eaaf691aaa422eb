"""Prometheus metrics from the health record (docs/metrics.md)."""
