"""GPU (accelerator) profiles: datasheet figures with sources, plus efficiency tables.

Profiles live in ``hwprofiles/<name>.yaml``. All FLOP/s figures are **dense** (no 2:4 sparsity),
except ``sparse_tflops``, which is kept apart and used only by the 2:4 sparse weight format.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from ..schema import StrictModel

Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4"]


class Figure(StrictModel):
    """One datasheet number with where it came from."""

    value: PositiveFloat
    source: str = Field(min_length=1)
    date: str = Field(min_length=4)


class Curve(StrictModel):
    """Achievable fraction of the roofline (ideal time / real time) over log2 shape features.

    1-D when ``y`` is empty (``values`` has one row), 2-D otherwise (``values[i][j]`` at ``x[j]``, ``y[i]``).
    Interpolated linearly in log2 space and clamped at the edges.
    """

    x_feature: str
    x: list[float]
    y_feature: str | None = None
    y: list[float] = []
    values: list[list[float]]


class TileModel(StrictModel):
    """Prefill attention as FlashAttention-2 forward tiles scheduled over the SMs (``simulator/perf/tiles.py``).

    One CTA takes ``block_m`` query rows of one (sequence, head) and walks its keys ``block_n`` at a
    time; alone on an SM it needs ``tile_s`` plus its MMA FLOPs at ``tile_efficiency`` of one SM's
    share of the datasheet peak. Up to ``ctas_per_sm`` CTAs share an SM, each then ``pair_slowdown``
    times slower. Few long tiles switch to the split-KV kernel (``split_*``, plus a combine kernel),
    as FlashAttention-2's heuristic decides. ``tail`` scales the ragged end of the last wave.
    Times in seconds; fitted by simulator/calibration/fit_tiles.py.
    """

    sms: PositiveInt                      # streaming multiprocessors of the measured GPU
    ctas_per_sm: PositiveInt = 2
    block_m: PositiveInt = 128            # query rows per CTA (main kernel)
    block_n: PositiveInt = 64             # keys per step of a CTA (main kernel)
    split_block_m: PositiveInt = 64       # split-KV kernel
    split_block_n: PositiveInt = 128
    launch_s: NonNegativeFloat            # per kernel: ramp-up and drain
    tile_s: NonNegativeFloat              # per CTA: load Q, write O, prologue / epilogue
    tile_efficiency: float = Field(gt=0, le=1)
    pair_slowdown: float = Field(ge=1, le=4)
    split_tile_s: NonNegativeFloat
    split_efficiency: float = Field(gt=0, le=1)
    combine_s: NonNegativeFloat           # the split-KV combine kernel
    tail: float = Field(ge=0, le=2)


class DecodeTileModel(StrictModel):
    """Decode attention as FlashAttention-2 CTAs streaming the KV cache (``simulator/perf/tiles.py``).

    One CTA per (sequence, KV head): the query heads of a group ride along as rows (FlashAttention's
    swap of query length and group for one-token decode, groups of up to 64). Few CTAs split the keys
    over several CTAs (FlashAttention-2's ``num_splits_heuristic``) and add a combine kernel. A CTA
    costs ``tile_s`` per wave of ``sms × ctas_per_sm`` slots and streams its bytes at ``tile_rate``
    times one SM's share of the memory bandwidth, never faster than ``bandwidth_efficiency`` of the
    datasheet bandwidth for the whole call (``split_*`` for the split-KV kernel). Times in seconds;
    fitted by simulator/calibration/fit_tiles.py.
    """

    sms: PositiveInt                      # streaming multiprocessors of the measured GPU
    ctas_per_sm: PositiveInt = 2
    block_n: PositiveInt = 128            # keys per block of the split-KV heuristic (head dim 128)
    # the split heuristic's view of the GPU: CTA slots per SM it fills (FlashAttention-2: 2; FA3 /
    # XQA-style kernels that run one CTA of a KV head's query group per SM: 1) and the fewest key
    # blocks it splits (FlashAttention-2: 1; FA3's heuristics.h: no split at 4 blocks or fewer, so 5)
    split_slots_per_sm: PositiveInt = 2
    split_min_blocks: PositiveInt = 1
    launch_s: NonNegativeFloat            # per call: ramp-up and drain
    tile_s: NonNegativeFloat              # per CTA wave: prologue / epilogue
    tile_rate: PositiveFloat              # one CTA's streaming rate / (memory bandwidth / sms)
    bandwidth_efficiency: float = Field(gt=0, le=1)
    split_tile_s: NonNegativeFloat
    split_rate: PositiveFloat
    split_bandwidth_efficiency: float = Field(gt=0, le=1)
    combine_s: NonNegativeFloat           # the combine kernel: fixed part ...
    combine_split_s: NonNegativeFloat     # ... plus this per split


class CollectiveFit(StrictModel):
    """t(bytes) = latency_s + bytes / bus_bandwidth factor, per group size (alpha-beta model).

    ``max_bytes``: the largest message the fitted kernel takes (an engine's custom all-reduce runs
    only below its buffer size; larger messages go to NCCL, ``simulator/perf/comm.py``)."""

    latency_s: PositiveFloat
    bandwidth_Bps: PositiveFloat            # algorithm bandwidth at large messages (bytes per second)
    max_bytes: PositiveFloat | None = None


def _by_size(fits: list[CollectiveFit]) -> list[CollectiveFit]:
    bounds = [f.max_bytes for f in fits]
    if not fits or bounds[-1] is not None or any(b is None for b in bounds[:-1]) \
            or any(a >= b for a, b in zip(bounds[:-2], bounds[1:-1])):
        raise ValueError("fits by message size need ascending max_bytes, the last one unbounded (null)")
    return fits


#: A collective on one group size: one fit, or fits by message size (ascending ``max_bytes``, the last
#: unbounded): NCCL changes protocol with the message, so one alpha-beta law misses the middle sizes.
CollectiveModel = CollectiveFit | Annotated[list[CollectiveFit], AfterValidator(_by_size)]


class FloorCurve(StrictModel):
    """A kernel family priced as a fixed time plus its roofline over an efficiency curve:
    ``floor_s + max(FLOPs / peak, bytes / bandwidth) / curve(x, y)`` (``simulator.perf.roofline.floor_curve_time``).
    ``floor_s`` is the family's shortest call (launch, ramp, the small kernels a module always runs);
    fitted by calibration/kerneldb/mla_moe.py from an engine's measured MLA decode or fused-MoE table."""

    floor_s: NonNegativeFloat
    curve: Curve


class Efficiency(StrictModel):
    """How close real kernels come to the roofline on this device."""

    status: Literal["default", "calibrated", "transferred"] = "default"
    source: str = "documented defaults (docs/reference/time-model.md)"
    transferred_from: str | None = None
    kernel_overlay: str | None = None              # set by catalog/kernels.apply_kernels: whose kernels
    launch_overhead_s: PositiveFloat = 4e-6        # per kernel when launched eagerly
    graph_launch_overhead_s: PositiveFloat = 1e-6  # per kernel inside a CUDA graph replay
    min_kernel_s: PositiveFloat = 2e-6             # shortest time any kernel takes on the device
    curves: dict[str, Curve] = {}                  # op kind -> curve; missing kinds use defaults
    attention_prefill_tiles: TileModel | None = None  # replaces the attention_prefill curve when set
    attention_decode_tiles: DecodeTileModel | None = None  # replaces the attention_decode curve when set
    kernels: dict[str, FloorCurve] = {}            # engine kernel families (attention_decode_mla, moe_bf16, moe_fp8)
    collectives: dict[str, dict[int, CollectiveModel]] = {}  # "all-reduce" -> {gpus: fit(s)}
    collectives_graph: dict[str, dict[int, CollectiveModel]] = {}
    # an engine's own collective kernels (custom all-reduce), set by catalog/kernels.apply_kernels:
    # used for messages up to their max_bytes, before the NCCL fits above
    engine_collectives: dict[str, dict[int, CollectiveFit]] = {}
    engine_collectives_graph: dict[str, dict[int, CollectiveFit]] = {}


class GPUProfile(StrictModel):
    """An accelerator: peak rates, memory, links, and efficiency."""

    name: str
    display_name: str
    vendor: str
    kind: Literal["gpu", "tpu", "cpu", "apple"] = "gpu"
    dense_tflops: dict[Dtype, Figure]
    sparse_tflops: dict[Dtype, Figure] = {}
    memory_gb: Figure                       # device memory, GiB-sized as datasheets print it
    memory_bandwidth_tbps: Figure           # TB/s (1e12 bytes/s)
    scaleup_bandwidth_gbps: Figure | None = None  # per GPU, one direction, GB/s (NVLink, IF, ICI)
    scaleup_latency_s: PositiveFloat = 5e-6
    host_link_gbps: Figure                  # one direction, GB/s (PCIe, C2C)
    tdp_w: Figure | None = None
    efficiency: Efficiency = Efficiency()

    # ---- derived, in SI units --------------------------------------------
    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for a compute dtype; KeyError if the device lacks it."""
        return self.dense_tflops[dtype].value * 1e12  # type: ignore[index]

    def has_dtype(self, dtype: str) -> bool:
        return dtype in self.dense_tflops

    @property
    def memory_bytes(self) -> float:
        return self.memory_gb.value * 2**30

    @property
    def memory_bandwidth(self) -> float:
        """Bytes per second."""
        return self.memory_bandwidth_tbps.value * 1e12

    @property
    def link_bandwidth(self) -> float:
        """Scale-up link bytes per second per direction (host link when there is none)."""
        fig = self.scaleup_bandwidth_gbps or self.host_link_gbps
        return fig.value * 1e9

    @property
    def host_bandwidth(self) -> float:
        return self.host_link_gbps.value * 1e9
