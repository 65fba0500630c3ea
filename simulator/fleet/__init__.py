"""Sharded single runs: one scenario's replicas spread over worker processes (local or Ray actors)."""
