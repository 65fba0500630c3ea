"""From an installed wheel, not the repo: calibrate this CPU, then simulate with the profile it wrote.

Builds the wheel offline (``pip wheel --no-deps --no-build-isolation --no-index``), installs it into
a fresh virtual environment that sees this interpreter's packages (numpy, torch, ...) through a
``.pth`` file but not the repository, and runs the console script from a folder outside the repo.
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from simulator.calibration.io import as_float, read_rows

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                       reason="needs torch (the calibrate extra: pip install 'servesim[calibrate]')"),
    pytest.mark.skipif(importlib.util.find_spec("hatchling") is None,
                       reason="needs hatchling to build the wheel without network (the test extra has it)"),
]


def _sh(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the servesim wheel installed; returns its bin folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = _sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                 str(ROOT), "-w", str(tmp / "dist")], cwd=tmp, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp / "dist").glob("servesim-*.whl"))
    venv = tmp / "venv"
    made = _sh([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr[-2000:]
    py = venv / "bin" / "python"
    target = Path(_sh([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp)
                  .stdout.strip())
    # the dependencies of this interpreter, as plain paths (their .pth files, the editable repo, are not read)
    deps = [p for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"]} if Path(p).is_dir()]
    (target / "zz_test_deps.pth").write_text("\n".join(deps) + "\n")
    inst = _sh([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp)
    assert inst.returncode == 0, inst.stderr[-2000:]
    where = _sh([str(py), "-c", "import simulator.calibration; print(simulator.calibration.__file__)"], cwd=tmp)
    assert str(ROOT) not in where.stdout and str(venv) in where.stdout, where.stdout + where.stderr
    return venv / "bin"


def test_calibrate_writes_a_profile_that_run_and_estimate_accept(installed, tmp_path):
    out = tmp_path / "cal"
    cmd = [str(installed / "servesim"), "calibrate", "--out", str(out), "--device", "cpu", "--quick",
           "--name", "my-gpu"]
    if importlib.util.find_spec("transformers") is None:     # whole_model needs it; the fit does not
        cmd += ["--only", "launch,memory,gemm,attention"]
    cal = _sh(cmd, cwd=tmp_path, timeout=240)
    assert cal.returncode == 0, cal.stderr[-3000:]
    profile = out / "my-gpu.yaml"
    assert f"wrote {profile}" in cal.stderr
    text = profile.read_text()
    assert "# Fit error" in text and "gemm_bf16: 8 points" in text
    report = json.loads((out / "my-gpu.fit.json").read_text())
    assert report["report"]["gemm_bf16"]["points"] == 8

    run = _sh([str(installed / "servesim"), "run", "--set", f"deployment.gpu={profile}", "--set", "model=llama-3.2-1b",
               "--set", "workload.requests=12", "--json", "--no-progress"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    assert summary["requests"] == summary["completed"] == 12

    # the installed simulator prices the measured GEMMs as the fit did: the written profile round-trips
    rows = read_rows(out / "gemm.csv")
    script = ("import contextlib, io, json, sys\nfrom simulator.cli import main\nfor m, k, n in json.loads(sys.argv[1]):\n"
              "    buf = io.StringIO()\n    with contextlib.redirect_stdout(buf):\n"
              "        main(['estimate', '--gpu', sys.argv[2], '--op', 'gemm', '--m', m, '--k', k, '--n', n, '--json'])\n"
              "    print(json.loads(buf.getvalue())['seconds'])\n")
    est = _sh([str(installed / "python"), "-c", script, json.dumps([[r["m"], r["k"], r["n"]] for r in rows]),
               str(profile)], cwd=tmp_path)
    assert est.returncode == 0, est.stderr[-3000:]
    errors = []
    for r, line in zip(rows, est.stdout.split(), strict=True):
        measured = as_float(r["kernel_s"]) if as_float(r["kernel_s"]) > 0 else as_float(r["event_s"])
        errors.append(abs(float(line) - measured) / measured * 100)
    assert statistics.median(errors) == pytest.approx(report["report"]["gemm_bf16"]["in_sample"]["median_ape_pct"],
                                                      abs=0.5)
