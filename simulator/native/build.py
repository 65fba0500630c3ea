"""Build the engine's C extensions: a hatchling build hook (``pip install``) and a command.

    python simulator/native/build.py        # compile in place, e.g. after editing decode_set.c

Compilation goes through setuptools' ``build_ext`` (the platform's compiler and Python's flags).
If it fails, the install goes on without the extensions (the engine then runs its pure-Python
references) unless ``SERVESIM_REQUIRE_NATIVE=1``, which makes a failed build an error (CI sets it).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: (module, C sources), paths relative to the project root.
EXTENSIONS = (("simulator.native._decode_set", ("simulator/native/decode_set.c", "simulator/native/decode_set_type.c",
                                                  "simulator/native/buffers.c")),
              ("simulator.native._step_key", ("simulator/native/step_key.c",)),
              ("simulator.native._step_price", ("simulator/native/step_price.c",)))
#: Headers the sources include (a change to one rebuilds the extensions).
HEADERS = ("simulator/native/buffers.h", "simulator/native/decode_set.h")
REQUIRE_ENV = "SERVESIM_REQUIRE_NATIVE"


def compile_in_place(root: Path = ROOT) -> list[Path]:
    """Compile every extension next to its source; returns the built files."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    # no fused multiply-add (-ffp-contract=off): each float operation rounds as numpy's does
    flags = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off"]
    exts = [Extension(name, list(srcs), extra_compile_args=flags, depends=list(HEADERS))
            for name, srcs in EXTENSIONS]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with tempfile.TemporaryDirectory() as tmp:   # object files go there, not into the tree
            cmd = build_ext(Distribution({"name": "servesim-native", "ext_modules": exts}))
            cmd.inplace = True
            cmd.build_temp = cmd.build_lib = tmp
            cmd.ensure_finalized()
            cmd.run()
            return [root / cmd.get_ext_filename(name) for name, _ in EXTENSIONS]
    finally:
        os.chdir(cwd)


def build_or_warn(root: Path = ROOT) -> list[Path]:
    """:func:`compile_in_place`, or a warning and no files when it fails (an error if required)."""
    try:
        return compile_in_place(root)
    except Exception as e:  # any compiler failure: the references still run
        if os.environ.get(REQUIRE_ENV) == "1":
            raise
        print(f"servesim: C extensions not built ({type(e).__name__}: {e}); the engine will run its "
              "pure-Python references, bit-identical but slower", file=sys.stderr)
        return []


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:   # at run time hatchling is not needed
    BuildHookInterface = None

if BuildHookInterface is not None:
    class NativeBuildHook(BuildHookInterface):   # type: ignore[misc, valid-type]
        """Compiles the extensions before a wheel (or an editable install) is made."""

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            built = build_or_warn(Path(self.root))
            if not built:
                return
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            if version != "editable":   # an editable install imports them from the source tree
                for path in built:
                    build_data["force_include"][str(path)] = str(path.relative_to(self.root))


if __name__ == "__main__":
    for p in compile_in_place():
        print(p)
