"""An embedded default chat workload fitted to the Azure LLM inference trace 2023 (conversation).

Source: Azure/AzurePublicDataset, ``AzureLLMInferenceTrace_conv.csv`` (one hour of production
traffic recorded 2023-11-16), described by Patel et al., "Splitwise: Efficient Generative LLM
Inference Using Phase Splitting", ISCA 2024. License CC-BY 4.0. See docs/guide/workload.md for the fit.
"""
from __future__ import annotations

import math

from simulator.errors import InputError
from simulator.workload.config import LognormalLength, PoissonArrival, WorkloadConfig

AZURE_CONV_2023 = {
    # Published statistics of AzureLLMInferenceTrace_conv.csv (trace recorded 2023-11-16;
    # Patel et al., Splitwise, ISCA 2024; Azure/AzurePublicDataset AzureLLMInferenceDataset2023.md).
    "rate_per_s": 5.53,
    "input_mean": 1155.0,
    "input_p50": 1020.0,
    "output_mean": 211.0,
    "output_p50": 129.0,
}
DEFAULT_PROMPT_MAX = 8192
DEFAULT_OUTPUT_MAX = 4096


def default_chat_workload(rate: float = AZURE_CONV_2023["rate_per_s"], requests: int = 2000) -> WorkloadConfig:
    """Poisson arrivals at ``rate`` requests/s; lognormal prompt and output lengths (tokens) whose
    mean and median match the Azure 2023 conversation trace, clipped to [1, 8192] and [1, 4096]."""
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise InputError("rate", rate, "must be a finite number > 0 (requests per second)")
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise InputError("requests", requests, "must be an integer >= 1")
    s = AZURE_CONV_2023
    return WorkloadConfig(
        arrival=PoissonArrival(process="poisson", rate=float(rate)),
        requests=requests,
        prompt_tokens=LognormalLength(
            dist="lognormal", mean=s["input_mean"], p50=s["input_p50"], min=1, max=DEFAULT_PROMPT_MAX
        ),
        output_tokens=LognormalLength(
            dist="lognormal", mean=s["output_mean"], p50=s["output_p50"], min=1, max=DEFAULT_OUTPUT_MAX
        ),
    )
