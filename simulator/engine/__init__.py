"""The serving engine: arrivals → router → replica schedulers → batches → step times."""
