"""Reconciliation with the center's inquiry record (RC-1, RC-2)."""
