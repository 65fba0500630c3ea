"""Tensor-parallel step: shard shapes, point parsing, scaling, the CPU (gloo) path, and that the
Megatron split computes the same logits as the unsplit model."""
from __future__ import annotations

import math

import pytest

from calibration import tp_step
from simulator.calibration.io import read_rows
from calibration.tp_model import LLAMA_70B, TINY, allreduce_bytes, kv_cache_bytes, layer_params, shard_shapes
from simulator.errors import InputError


def test_llama70b_shards_match_hand_counts():
    s = shard_shapes(LLAMA_70B, 4)
    # 64/4 = 16 query heads, 8/4 = 2 KV heads, head_dim 128
    assert s["qkv"] == ((16 + 2 * 2) * 128, 8192)
    assert s["o"] == (8192, 2048)
    assert s["gate_up"] == (2 * 28672 // 4, 8192)
    assert s["down"] == (8192, 7168)
    assert s["lm_head"] == s["embedding"] == (128256 // 4, 8192)
    # tp = 1: 80 layers + embedding + LM head = 70.55e9 parameters, the published "70B" size
    total = 80 * layer_params(LLAMA_70B, 1) + 2 * 128256 * 8192 + 8192
    assert total == pytest.approx(70.55e9, rel=2e-3)
    # every layer's weights split evenly over the TP ranks (norms replicated)
    for tp in (2, 4, 8):
        assert layer_params(LLAMA_70B, tp) - 2 * 8192 == (layer_params(LLAMA_70B, 1) - 2 * 8192) // tp


def test_kv_and_allreduce_bytes():
    # decode 128 x 2048 at tp 4: 2 (K, V) x 128 seqs x 2 KV heads x 2049 slots x 128 x 2 bytes per layer
    assert kv_cache_bytes(LLAMA_70B, 4, 128, 2048, 1) == 2 * 128 * 2 * 2049 * 128 * 2
    assert allreduce_bytes(LLAMA_70B, 32) == 32 * 8192 * 2           # 512 KiB


@pytest.mark.parametrize("tp", [0, 3, 5])
def test_bad_tp_is_an_input_error(tp):
    with pytest.raises(InputError, match="tp"):
        shard_shapes(LLAMA_70B, tp)


def test_points_parse_and_reject():
    assert tp_step.parse_points("decode:32x1024, prefill:4x2048") == [("decode", 32, 1024), ("prefill", 4, 2048)]
    for bad in ("decode:32", "train:1x2", "decode:0x5", ""):
        with pytest.raises(InputError):
            tp_step.parse_points(bad)
    pts = tp_step.default_points()
    assert pts[:3] == [("decode", 1, 1024), ("decode", 32, 1024), ("decode", 128, 2048)]
    assert pts[3:] == [("prefill", 1, 512), ("prefill", 4, 2048)]


def test_scaling_and_kernel_classes():
    # 1 ms outside the layers + 8 layers of 0.5 ms -> 80 layers: 1 + 0.5 * 80 = 41 ms
    assert tp_step.scale_to_model(1e-3, 4e-3, 8, 80) == pytest.approx(41e-3)
    assert tp_step.is_comm_kernel("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)")
    assert not tp_step.is_comm_kernel("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64")


def test_cli_rejects_bad_input(capsys):
    assert tp_step.main(["--out", "/tmp/x", "--tps", "4,a"]) == 2
    assert "--tps" in capsys.readouterr().err
    assert tp_step.main(["--out", "/tmp/x", "--model", "llama-70"]) == 2
    assert "llama-3.1-70b" in capsys.readouterr().err


# ---- torch on the CPU (gloo) ----------------------------------------------------------------
def test_cpu_path_writes_rows_and_resumes(tmp_path):
    pytest.importorskip("torch")
    pts = [("decode", 2, 16), ("prefill", 2, 8)]
    tp_step.run(tmp_path, (2, 1), 90, device="cpu", model="tiny-tp", layers=2, pts=pts)
    rows = read_rows(tmp_path / "tp_step.csv")
    header = (tmp_path / "tp_step.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == tp_step.TP_STEP.columns
    assert {(r["tp"], r["phase"], r["mode"]) for r in rows} == {
        (tp, ph, "eager") for tp in ("1", "2") for ph in ("decode", "prefill")}
    for r in rows:
        assert int(r["layers_measured"]) == 2 and int(r["layers_model"]) == TINY.layers
        assert int(r["repeats"]) >= 10
        assert r["comm_s"] == r["compute_s"] == ""        # no kernel profile without a GPU
        # the 4-layer step is longer than the measured 2-layer one; each rep scales as outside + 2 x layers
        assert float(r["step_s"]) > float(r["measured_step_s"]) > 0
        assert float(r["step_p10_s"]) <= float(r["step_s"]) <= float(r["step_p90_s"])
        assert float(r["layer_s"]) > 0 and float(r["outside_s"]) > 0
    # resume: nothing pending, nothing new written
    log = tp_step.CsvLog(tmp_path / "tp_step.csv", tp_step.TP_STEP)
    assert all(not tp_step.pending(log, tp, 2, pts, "cpu") for tp in (1, 2))
    tp_step.run(tmp_path, (2, 1), 30, device="cpu", model="tiny-tp", layers=2, pts=pts)
    assert len(read_rows(tmp_path / "tp_step.csv")) == len(rows)


def _split_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    from calibration.tp_model import TPDecoder

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    results = []
    for phase, batch, n in (("prefill", 2, 6), ("decode", 3, 5)):
        torch.manual_seed(0)
        full = TPDecoder(TINY, 1, 0, 2, "cpu", torch.float64)
        full.set_shape(phase, batch, n)
        ids = full.token_ids(seed=1)
        want = full.logits(full.run_layers(full.embed(ids)))
        part = TPDecoder(TINY, world, rank, 2, "cpu", torch.float64, dist.group.WORLD)
        part.set_shape(phase, batch, n)
        part.shard_from(full)
        got = part.logits(part.run_layers(part.embed(ids)))
        results.append(float((got - want).abs().max() / want.abs().max()))
    if rank == 0:
        with open(out, "w") as f:
            f.write(",".join(f"{r:.3e}" for r in results))
    dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 4])
def test_split_model_matches_unsplit(tmp_path, world):
    """Column/row-parallel layers with all-reduces and the vocab-parallel embedding and LM head give
    the tp = 1 logits (fp64), prefill and decode with a KV cache, KV heads split over ranks."""
    pytest.importorskip("torch")
    import torch.multiprocessing as mp

    from simulator.calibration.collectives import free_port

    out = tmp_path / "err.txt"
    mp.start_processes(_split_worker, args=(world, free_port(), str(out)), nprocs=world, start_method="spawn")
    errs = [float(v) for v in out.read_text().split(",")]
    assert len(errs) == 2 and all(e < 1e-10 for e in errs), errs
    assert not any(math.isnan(e) for e in errs)
