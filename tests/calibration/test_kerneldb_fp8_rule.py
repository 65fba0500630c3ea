"""The fp8 rule for database GPUs, held against our own fp8 kernels on H100 and H200 (not fitted on them)."""
from __future__ import annotations

import numpy as np

from calibration.kerneldb.fp8_rule import GPUS, fp8_rows, main, rule_errors


def test_our_fp8_rows_are_there():
    for gpu in GPUS:
        df = fp8_rows(gpu)
        assert len(df) > 500 and (df["seconds"] > 0).all()
        # hand count: 2·M·K·N FLOPs
        assert np.allclose(df["flops"], 2 * df["m"] * df["k"] * df["n"])


def test_bf16_curve_prices_our_fp8_kernels_and_the_fp8_tables_do_not():
    for gpu in GPUS:
        for engine in ("vllm", "sglang", "trtllm"):
            own, db_fp8, db_bf16 = rule_errors(gpu, engine)
            assert own.median() < 0.06                     # our own fit on its own rows
            assert db_bf16.median() < 0.10, (gpu, engine)  # the rule, on rows it was not fitted on
            assert db_fp8.median() > 0.30, (gpu, engine)   # the fp8 tables: 1.3-1.7x slower
            assert db_fp8.bias() > 0.30


def test_cli_prints_a_table(capsys):
    assert main(["--engine", "vllm"]) == 0
    out = capsys.readouterr().out
    assert out.count("| h100-sxm |") == 3 and out.count("| h200-sxm |") == 3
