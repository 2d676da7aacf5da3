"""The audit ledger (LG-1, LG-2): append in the action's transaction, hash chain, checkpoints, verify."""
