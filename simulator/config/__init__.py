"""User-facing configuration: scenarios (model, deployment, workload, SLOs) and how to load them."""
from .scenario import SLO, Batching, Deployment, KVCache, Scenario
from .loader import load_scenario, scenario_from_dict

__all__ = ["SLO", "Batching", "Deployment", "KVCache", "Scenario", "load_scenario", "scenario_from_dict"]
