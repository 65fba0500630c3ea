"""GPU profiles: every file validates and is sourced, datasheet conventions hold (dense vs sparse,
dtype support), derived SI units, aliases and error messages, and the collective defaults agree
with the ring formulas and with published NCCL measurements."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from simulator import paths
from simulator.catalog import gpus as gpus_mod
from simulator.catalog.gpu import GPUProfile
from simulator.catalog.gpus import gpu_table, gpu_table_markdown, list_gpus, load_gpu, load_gpu_file
from simulator.catalog.nccl import load_nccl_profile
from simulator.errors import InputError

REQUIRED = ["a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-80gb", "h100-sxm", "h100-pcie", "h200-sxm", "b200",
            "l4", "l40s", "a10g", "rtx-4090", "mi300x", "mi325x", "tpu-v5e", "tpu-v6e", "apple-m3-max",
            "epyc-9654", "b300", "gb300", "rtx-pro-6000-server"]
#: Blackwell profiles; all but b300 (whose dense fp4 rate could not be sourced) list fp4.
BLACKWELL = ("b200", "gb200", "b300", "gb300", "rtx-pro-6000-server")
TODAY = dt.date.today()


def _raw(name: str) -> dict:
    return yaml.safe_load((paths.hwprofiles_dir() / f"{name}.yaml").read_text())


def _figures(node: object, where: str = "") -> list[tuple[str, dict]]:
    """Every {value, source, date} mapping in a raw profile, with its dotted location."""
    out: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        if "value" in node:
            out.append((where, node))
        for k, v in node.items():
            out += _figures(v, f"{where}.{k}" if where else str(k))
    return out


# ---- files -------------------------------------------------------------------------------------

def test_hwprofiles_dir_holds_every_required_profile() -> None:
    d = paths.hwprofiles_dir()
    assert d.is_dir() and (d / "README.md").is_file() and (d / "aliases.yaml").is_file()
    stems = sorted(p.stem for p in d.glob("*.yaml") if p.name != "aliases.yaml")
    assert list_gpus() == stems
    assert set(REQUIRED) <= set(stems)


@pytest.mark.parametrize("name", list_gpus())
def test_profile_validates_and_matches_its_file(name: str) -> None:
    g = load_gpu(name)
    assert isinstance(g, GPUProfile) and g.name == name
    assert g.efficiency.source.strip()
    eff = g.efficiency
    if eff.status == "calibrated" and "aiconfigurator-core" in eff.source:   # from a kernel database
        assert (paths.hwprofiles_dir() / "kernels" / name / "vllm.yaml").is_file()
    elif eff.status == "calibrated":
        assert (paths.PACKAGE_DIR.parent / "calibration" / "data" / name / "gemm.csv").is_file()
    elif eff.status == "transferred":
        assert eff.transferred_from and load_gpu(eff.transferred_from).efficiency.status == "calibrated"
        assert eff.curves == load_gpu(eff.transferred_from).efficiency.curves
    else:
        assert eff.status == "default" and not eff.curves
    assert g.memory_gb.value > 0 and g.memory_bandwidth_tbps.value > 0 and g.host_link_gbps.value > 0


@pytest.mark.parametrize("name", list_gpus())
def test_every_figure_has_source_and_a_past_iso_date(name: str) -> None:
    figs = _figures(_raw(name))
    assert len(figs) >= 5
    for where, f in figs:
        assert set(f) == {"value", "source", "date"}, where
        assert len(f["source"].strip()) > 10, where
        assert dt.date.fromisoformat(f["date"]) <= TODAY, where


# ---- datasheet conventions ---------------------------------------------------------------------

def test_h100_sxm_bf16_is_the_dense_rate() -> None:
    g = load_gpu("h100-sxm")
    assert g.dense_tflops["bf16"].value == 989          # not the 1,979 printed with sparsity
    assert g.sparse_tflops["bf16"].value == 1979
    assert g.peak_flops("bf16") == pytest.approx(989e12)
    assert "halved" in g.dense_tflops["bf16"].source


@pytest.mark.parametrize("name", list_gpus())
def test_sparse_rates_are_twice_dense_and_nvidia_only(name: str) -> None:
    g = load_gpu(name)
    if g.sparse_tflops:
        assert g.vendor == "NVIDIA"                      # 2:4 sparse rates kept for NVIDIA Ampere+ only
    for k, sp in g.sparse_tflops.items():
        assert k in g.dense_tflops
        dense = g.dense_tflops[k].value
        assert sp.value >= dense
        # 2.0 up to datasheet rounding; the L40S sheet prints 362.05 dense and 733 sparse (2.025)
        assert sp.value / dense == pytest.approx(2.0, rel=0.025), k


def test_dtype_support_follows_the_architecture() -> None:
    for name in ("a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-80gb", "a10g"):   # Ampere: no fp8
        assert not load_gpu(name).has_dtype("fp8"), name
    for name in ("l4", "l40s", "rtx-4090", "h100-sxm", "h100-pcie", "h200-sxm", "mi300x") + BLACKWELL:
        assert load_gpu(name).has_dtype("fp8"), name
    for name in list_gpus():
        assert load_gpu(name).has_dtype("fp4") == (name in BLACKWELL and name != "b300"), name


@pytest.mark.parametrize("name", list_gpus())
def test_dtype_rates_are_consistent(name: str) -> None:
    d = {k: f.value for k, f in load_gpu(name).dense_tflops.items()}
    if "bf16" in d and "fp16" in d:
        assert d["bf16"] == d["fp16"]
    if "fp8" in d:
        assert d["fp8"] == pytest.approx(2 * d["bf16"], rel=0.03)   # L40S datasheet: 733 vs 2 x 362.05
    if "tf32" in d:
        assert d["tf32"] <= d["bf16"]
    if "int8" in d and "bf16" in d:
        assert d["int8"] >= d["bf16"]


def test_rtx_4090_uses_fp32_accumulate_rates() -> None:
    g = load_gpu("rtx-4090")
    assert g.dense_tflops["bf16"].value == 165.2 and g.dense_tflops["fp8"].value == 330.3
    assert "accumulate" in g.dense_tflops["bf16"].source


def test_same_silicon_has_same_compute() -> None:
    for a, b in (("h100-sxm", "h200-sxm"), ("mi300x", "mi325x"), ("a100-sxm-40gb", "a100-sxm-80gb")):
        ga, gb = load_gpu(a), load_gpu(b)
        assert {k: f.value for k, f in ga.dense_tflops.items()} == {k: f.value for k, f in gb.dense_tflops.items()}
        assert ga.memory_gb.value < gb.memory_gb.value
        assert ga.memory_bandwidth_tbps.value < gb.memory_bandwidth_tbps.value


def test_cpu_and_apple_rates_match_hand_arithmetic() -> None:
    epyc = load_gpu("epyc-9654")
    assert epyc.kind == "cpu"
    assert epyc.dense_tflops["fp32"].value == pytest.approx(96 * 32 * 2.4e9 / 1e12, rel=1e-3)
    assert epyc.dense_tflops["bf16"].value == pytest.approx(96 * 64 * 2.4e9 / 1e12, rel=1e-3)
    assert epyc.dense_tflops["int8"].value == pytest.approx(96 * 128 * 2.4e9 / 1e12, rel=1e-3)
    assert epyc.memory_bandwidth == pytest.approx(12 * 4800e6 * 8)      # 12 x DDR5-4800 x 8 bytes
    assert not epyc.has_dtype("fp16")                                   # no AVX512-FP16 on Zen 4
    m3 = load_gpu("apple-m3-max")
    assert m3.kind == "apple"
    assert m3.dense_tflops["fp32"].value == pytest.approx(40 * 128 * 2 * 1.398e9 / 1e12, rel=1e-3)
    assert m3.memory_bandwidth == pytest.approx(400e9) and m3.memory_gb.value == 128


def test_derived_properties_are_si() -> None:
    g = load_gpu("h100-sxm")
    assert g.memory_bandwidth == pytest.approx(3.35e12)          # bytes/s
    assert g.link_bandwidth == pytest.approx(450e9)              # NVLink, one direction
    assert g.host_bandwidth == pytest.approx(64e9)               # PCIe Gen5 x16, one direction
    assert g.memory_bytes == 80 * 2**30
    assert g.peak_flops("fp8") == pytest.approx(1979e12)
    l4 = load_gpu("l4")                                          # no NVLink: link falls back to PCIe
    assert l4.scaleup_bandwidth_gbps is None and l4.link_bandwidth == pytest.approx(32e9)
    with pytest.raises(KeyError):
        load_gpu("a100").peak_flops("fp8")


# ---- names and errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("alias", "name"), [("h100", "h100-sxm"), ("H100", "h100-sxm"), ("a100", "a100-sxm-80gb"),
                                             ("h200", "h200-sxm"), ("mi300", "mi300x"), ("MI300X", "mi300x"),
                                             ("A100_SXM_40GB", "a100-sxm-40gb"), ("rtx 4090", "rtx-4090")])
def test_aliases_and_case_resolve(alias: str, name: str) -> None:
    assert load_gpu(alias).name == name


def test_every_alias_targets_a_profile() -> None:
    raw = yaml.safe_load((paths.hwprofiles_dir() / "aliases.yaml").read_text())
    assert raw and all(t in list_gpus() for t in raw.values())
    assert not set(raw) & set(list_gpus())


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(InputError) as info:
        load_gpu("h100-sxn")
    msg = str(info.value)
    assert info.value.field == "gpu" and info.value.value == "h100-sxn"
    assert "did you mean" in msg and "h100-sxm" in msg and "\n" not in msg
    with pytest.raises(InputError):
        load_gpu("")


def _bad_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    d = tmp_path / "hwprofiles"
    d.mkdir()
    (d / f"{name}.yaml").write_text(text)
    monkeypatch.setattr(gpus_mod, "hwprofiles_dir", lambda: d)


def test_invalid_profile_names_file_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw("l4")
    raw["dense_tflops"]["bf16"]["value"] = -1
    _bad_dir(tmp_path, monkeypatch, "l4", yaml.safe_dump(raw))
    with pytest.raises(InputError) as info:
        load_gpu("l4")
    assert info.value.field == "hwprofiles/l4.yaml:dense_tflops.bf16.value"
    assert info.value.value == -1 and "\n" not in str(info.value)


def test_unknown_field_and_name_mismatch_are_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw("l4")
    raw["dense_tflops"]["fp64"] = raw["dense_tflops"]["fp32"]
    _bad_dir(tmp_path, monkeypatch, "l4", yaml.safe_dump(raw))
    with pytest.raises(InputError) as info:
        load_gpu("l4")
    assert info.value.field.startswith("hwprofiles/l4.yaml:dense_tflops.fp64")
    raw = _raw("l4")
    raw["name"] = "l4x"
    (tmp_path / "other").mkdir()
    monkeypatch.setattr(gpus_mod, "hwprofiles_dir", lambda: tmp_path / "other")
    (tmp_path / "other" / "l4.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match="must match the file name"):
        load_gpu("l4")


def test_broken_yaml_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(InputError) as info:
        load_gpu(str(p))
    assert "valid YAML" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="no such profile file"):
        load_gpu_file(tmp_path / "missing.yaml")


# ---- collective defaults -----------------------------------------------------------------------

def _link_gbps(g: GPUProfile) -> float:
    return (g.scaleup_bandwidth_gbps or g.host_link_gbps).value


def _measured_collectives(name: str) -> bool:
    """Profiles whose collective fits come from measurements (calibration/data/<gpu>/collectives.csv)."""
    return (paths.PACKAGE_DIR.parent / "calibration" / "data" / name / "collectives.csv").is_file()


def _ring_tables(g: GPUProfile) -> list[dict]:
    """The collective tables of ``g`` that hold the documented ring defaults: both, or only the CUDA-graph
    one where the kernel database's NCCL timings replaced the eager fits."""
    eff = g.efficiency
    return [eff.collectives_graph] if load_nccl_profile(g.name) is not None else [eff.collectives, eff.collectives_graph]


@pytest.mark.parametrize("name", [n for n in list_gpus() if not _measured_collectives(n)])
def test_collective_fits_follow_the_ring_model(name: str) -> None:
    g = load_gpu(name)
    eff = g.efficiency
    if g.kind in ("cpu", "apple"):
        assert not eff.collectives and not eff.collectives_graph
        return
    tables = _ring_tables(g)
    for table in tables:
        assert set(table) == {"all-reduce", "all-gather"}
        for fits in table.values():
            assert sorted(fits) == [2, 4, 8]
            lats = [fits[n].latency_s for n in (2, 4, 8)]
            assert lats == sorted(lats) and lats[0] < 50e-6      # latency grows with the group
    for table in tables:
        for n in (2, 4, 8):
            ar, ag = table["all-reduce"][n], table["all-gather"][n]
            # ring: all-reduce moves 2(n-1)/n of its buffer N; all-gather moves (n-1) shards of N each
            assert ag.bandwidth_Bps == pytest.approx(2 * ar.bandwidth_Bps / n, rel=1e-3)
            # never faster than the datasheet link used at 100%
            assert ar.bandwidth_Bps <= _link_gbps(g) * 1e9 * n / (2 * (n - 1)) * (1 + 1e-9)
    if len(tables) == 2:
        for n in (2, 4, 8):
            for coll in ("all-reduce", "all-gather"):
                e, gr = eff.collectives[coll][n], eff.collectives_graph[coll][n]
                assert gr.latency_s <= e.latency_s and gr.bandwidth_Bps == e.bandwidth_Bps


@pytest.mark.parametrize("name", [n for n in ["a100-sxm-80gb", "h100-sxm", "h200-sxm", "b200", "gb200"]
                                  if not _measured_collectives(n)])
def test_nvswitch_fits_equal_the_documented_formula(name: str) -> None:
    g = load_gpu(name)
    link = 0.8 * g.scaleup_bandwidth_gbps.value * 1e9   # type: ignore[union-attr]
    for table in _ring_tables(g):
        for n in (2, 4, 8):
            assert table["all-reduce"][n].bandwidth_Bps == pytest.approx(link * n / (2 * (n - 1)), rel=1e-3)
            assert table["all-gather"][n].bandwidth_Bps == pytest.approx(link / (n - 1), rel=1e-3)
    if load_nccl_profile(name) is None:
        for n in (2, 4, 8):
            assert g.efficiency.collectives["all-reduce"][n].latency_s == pytest.approx(8e-6 + 1.5e-6 * (n - 1))


#: Bytes each GPU must at least move over its scale-up link, per byte of its message: an all-reduce its
#: buffer once (reduced in the switch, NVLink SHARP; a ring moves 2(n-1)/n), an all-gather the (n-1)
#: shards of the others, an all-to-all the (n-1)/n of its buffer bound for the others.
LINK_FLOOR = {"all-reduce": lambda n: 1.0, "all-gather": lambda n: n - 1.0, "all-to-all": lambda n: (n - 1) / n}


@pytest.mark.parametrize("name", [n for n in list_gpus() if load_nccl_profile(n) is not None])
def test_database_nccl_fits_are_the_eager_collectives_and_never_beat_the_link(name: str) -> None:
    g, nccl = load_gpu(name), load_nccl_profile(name)
    assert nccl is not None
    own = {n for fits in g.efficiency.collectives_graph.values() for n in fits} if _measured_collectives(name) else set()
    link = _link_gbps(g) * 1e9
    for coll, by_g in nccl.collectives.items():
        for n, fits in by_g.items():
            if n not in own:
                assert g.efficiency.collectives[coll][n] == fits
            for f in fits:   # at the top of each range (1 GiB for the last): time >= bytes over the link
                top = f.max_bytes or 2.0 ** 30
                assert f.latency_s + top / f.bandwidth_Bps >= LINK_FLOOR[coll](n) * top / link, (coll, n, f)


# Published nccl-tests all_reduce_perf, 8 x H20 (NVLink4, 450 GB/s per direction like H100 SXM),
# out-of-place time in microseconds by buffer bytes (kvcache-ai/Mooncake PR #3484, nccl-tests 2.19.7).
NCCL_8GPU_NVLINK4_US = {134217728: 700.25, 268435456: 1366.17, 536870912: 2671.60, 1073741824: 5252.64}


def test_h100_all_reduce_default_matches_measured_large_messages() -> None:
    # the CUDA-graph default (ring, 80% of the link); the eager fits are the kernel database's NCCL 2.29
    # timings, 17-21% faster at these sizes (busbw about 450 GB/s: NVLink SHARP, which this run lacked)
    fit = load_gpu("h100-sxm").efficiency.collectives_graph["all-reduce"][8]
    for nbytes, us in NCCL_8GPU_NVLINK4_US.items():
        predicted = fit.latency_s + nbytes / fit.bandwidth_Bps
        assert predicted == pytest.approx(us * 1e-6, rel=0.05), nbytes
    # bus bandwidth at 1 GiB: measured 357.7 GB/s; the default implies 0.8 x 450 = 360 GB/s
    assert fit.bandwidth_Bps * 2 * 7 / 8 == pytest.approx(357.73e9, rel=0.02)


def test_amd_mesh_bandwidth_grows_with_the_group() -> None:
    fits = load_gpu("mi300x").efficiency.collectives["all-reduce"]
    # a group of n reaches n-1 Infinity Fabric links of 64 GB/s: busbw = 0.8 x 64 x (n-1)
    for n in (2, 4, 8):
        assert fits[n].bandwidth_Bps * 2 * (n - 1) / n == pytest.approx(0.8 * 64e9 * (n - 1), rel=1e-3)


# ---- table ---------------------------------------------------------------------------------------

def test_gpu_table_rows_and_markdown() -> None:
    rows = gpu_table()
    assert [r["name"] for r in rows] == list_gpus()
    h100 = next(r for r in rows if r["name"] == "h100-sxm")
    assert h100["bf16_dense_tflops"] == 989 and h100["scaleup_gbps"] == 450 and h100["efficiency"] == "calibrated"
    md = gpu_table_markdown().splitlines()
    assert len(md) == len(rows) + 2 and md[0].startswith("| Name |")
