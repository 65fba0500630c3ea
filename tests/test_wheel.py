"""What ``pip install .`` ships: one top-level package, ``simulator``, with its data, the calibration
suite and the dashboard pages; the research code of ``calibration/`` stays in the repository.

Builds the wheel offline (``pip wheel --no-deps --no-build-isolation --no-index``, hatchling from
the test extra) and runs ``servesim calibrate --help`` from the unpacked wheel, outside the repo.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("hatchling") is None,
                       reason="needs hatchling to build the wheel without network (the test extra has it)"),
]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(cmd, cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                  str(ROOT), "-w", str(tmp / "dist")], cwd=tmp)
    assert built.returncode == 0, built.stderr[-2000:]
    return next((tmp / "dist").glob("servesim-*.whl"))


def test_the_wheel_installs_only_the_simulator_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"simulator"}
    for shipped in ("simulator/calibration/suite.py", "simulator/calibration/user_profile.py",
                    "simulator/dashboard/whatif.py", "simulator/dashboard/app.py", "simulator/catalog/engines/vllm.yaml",
                    "simulator/_data/hwprofiles/h100-sxm.yaml"):
        assert shipped in names, shipped
    # research code and measurements stay in the repository
    assert not [n for n in names if "/tp_step" in n or "/e2e/" in n or "/kerneldb/" in n or "calibration/data" in n]


def test_calibrate_help_runs_from_the_wheel(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    out = _run([sys.executable, "-c", "import simulator, sys; print(simulator.__file__); "
                "from simulator.cli import main; sys.exit(main(['calibrate', 'fit', '--help']))"],
               cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0].startswith(str(site))
    assert "--write" in out.stdout and "--check" in out.stdout
    suite = _run([sys.executable, "-m", "simulator", "calibrate", "--help"], cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert suite.returncode == 0 and "--out" in suite.stdout, suite.stderr[-2000:]
    check = _run([sys.executable, "-m", "simulator", "calibrate", "fit", "--check"], cwd=tmp_path,
                 env={"PYTHONPATH": str(site)})
    assert check.returncode == 2 and "servesim checkout" in check.stderr and "Traceback" not in check.stderr


def test_the_dashboard_serves_from_the_wheel(wheel, tmp_path):
    """``servesim dashboard`` points Streamlit at the entry script inside the installed package, and
    that script renders the What-if page there (no repository on the path)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import sys; from simulator.commands.dashboard_cmd import APP, streamlit_command; "
            "cmd = streamlit_command(8501, True); print(cmd[4]); "
            "from streamlit.testing.v1 import AppTest; at = AppTest.from_file(str(APP), default_timeout=60); "
            "at.query_params.update({'workload.requests': '200'}); at.run(); "
            "print('exceptions', len(at.exception)); print('metrics', len(at.metric))")
    out = _run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == str(site / "simulator" / "dashboard" / "app.py")
    assert "exceptions 0" in lines and lines[-1] != "metrics 0"
