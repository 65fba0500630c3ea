"""Workload model: arrival processes, length distributions and trace readers.

``generate(config, seed)`` returns a :class:`RequestTable` of numpy columns, one row per request.
"""
from simulator.workload.config import (
    ArrivalConfig,
    ClosedLoopArrival,
    ConstantArrival,
    Diurnal,
    EmpiricalLength,
    FixedLength,
    GammaArrival,
    LengthConfig,
    LognormalLength,
    NormalLength,
    OfflineArrival,
    PoissonArrival,
    RateSegment,
    TraceArrival,
    UniformLength,
    WorkloadConfig,
)
from simulator.workload.defaults import default_chat_workload
from simulator.workload.generate import generate, rng_streams
from simulator.workload.lengths import fit_lognormal, sample_lengths
from simulator.workload.table import PREFIX_BLOCK_TOKENS, RequestTable
from simulator.workload.traces import read_azure_trace, read_length_column, read_mooncake_trace, read_trace

__all__ = [
    "ArrivalConfig",
    "ClosedLoopArrival",
    "ConstantArrival",
    "Diurnal",
    "EmpiricalLength",
    "FixedLength",
    "GammaArrival",
    "LengthConfig",
    "LognormalLength",
    "NormalLength",
    "OfflineArrival",
    "PREFIX_BLOCK_TOKENS",
    "PoissonArrival",
    "RateSegment",
    "RequestTable",
    "TraceArrival",
    "UniformLength",
    "WorkloadConfig",
    "default_chat_workload",
    "fit_lognormal",
    "generate",
    "read_azure_trace",
    "read_length_column",
    "read_mooncake_trace",
    "read_trace",
    "rng_streams",
    "sample_lengths",
]
