"""Liveness, readiness and metrics (anonymous; no personal data)."""
