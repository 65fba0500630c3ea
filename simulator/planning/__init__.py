"""Capacity planning on top of the simulator: parameter sweeps (local processes or Ray),
the cheapest deployment meeting a target rate and SLOs, self-hosting versus API cost, and
confidence intervals from independent replications.

Modules import their heavy dependencies lazily; import the one you need, e.g.
``from simulator.planning.planner import plan``.
"""
