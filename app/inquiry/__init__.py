"""The guarded inquiry: purpose policy, two-person approval, outbox, sealed responses (PL-*, A, B, CC-1)."""
