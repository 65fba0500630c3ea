"""Recording what the engine did, and summarising it."""
