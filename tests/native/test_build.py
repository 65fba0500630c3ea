"""Building the C extensions: a compiler failure leaves the references running (a warning), unless
the build is required; a real build in a scratch tree produces importable modules."""
from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import pytest

from simulator.native import build


def test_a_failed_build_warns_and_goes_on(monkeypatch, capsys):
    def broken(root: Path) -> list[Path]:
        raise RuntimeError("no compiler")

    monkeypatch.setattr(build, "compile_in_place", broken)
    monkeypatch.delenv(build.REQUIRE_ENV, raising=False)
    assert build.build_or_warn() == []
    assert "pure-Python references" in capsys.readouterr().err


def test_a_failed_build_is_an_error_where_required(monkeypatch):
    def broken(root: Path) -> list[Path]:
        raise RuntimeError("no compiler")

    monkeypatch.setattr(build, "compile_in_place", broken)
    monkeypatch.setenv(build.REQUIRE_ENV, "1")
    with pytest.raises(RuntimeError, match="no compiler"):
        build.build_or_warn()


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_compiling_a_scratch_tree_gives_loadable_modules(tmp_path):
    folder = tmp_path / "simulator" / "native"
    folder.mkdir(parents=True)
    for src in (build.ROOT / "simulator" / "native").iterdir():
        if src.suffix in (".c", ".h"):
            shutil.copy(src, folder / src.name)
    built = build.compile_in_place(tmp_path)
    assert len(built) == len(build.EXTENSIONS) and all(p.is_file() for p in built)
    assert not (tmp_path / "build").exists()          # object files went to a temporary folder
    spec = importlib.util.spec_from_file_location("simulator.native._step_key", built[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.cost_key((1, 1, 100.0, 64, 2, 10.0, None, None, None, 1))[2] == 2.0 ** (round(math.log2(100.0) * 64) / 64)


def test_modules_built_in_this_checkout_are_the_ones_the_engine_loads():
    from simulator.engine.decode_set import NativeDecodeSet
    from simulator.perf.shape import _native

    folder = build.ROOT / "simulator" / "native"
    if not any(folder.glob("_decode_set.*")):
        pytest.skip("extensions not built in this checkout")
    assert NativeDecodeSet is not None and _native is not None
