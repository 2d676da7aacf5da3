"""Escalations: what the gateway raises to branch managers and HQ compliance (a document mismatch, an
overdue list, a list line that does not match, a center that refused a cancellation, HQ's unbalanced day)
and how they are handled — acknowledged, with what was done, by someone other than those concerned."""
