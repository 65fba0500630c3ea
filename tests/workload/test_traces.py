"""Trace readers: fixtures (always run) and the real public traces (when present)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from simulator.errors import InputError
from simulator.workload import read_azure_trace, read_mooncake_trace, read_trace
from simulator.workload import traces
from simulator.workload.traces import detect_format

from .helpers import FIXTURES, SHARED_TRACES, needs_shared_traces

AZURE = FIXTURES / "azure_small.csv"
MOONCAKE = FIXTURES / "mooncake_small.jsonl"


def test_azure_fixture() -> None:
    t = read_azure_trace(AZURE)
    assert len(t) == 5
    # Hand-computed from the fixture's timestamps (100 ns resolution).
    np.testing.assert_allclose(t.arrival_s, [0.0, 0.052, 0.52004, 2.0000001, 10.0], rtol=0, atol=1e-9)
    assert t.prompt_tokens.tolist() == [4808, 3180, 100, 512, 2]
    assert t.output_tokens.tolist() == [10, 8, 1, 300, 7]
    assert t.prefix_hashes is None and t.notes == ()


def test_mooncake_fixture_blocks() -> None:
    t = read_mooncake_trace(MOONCAKE)
    np.testing.assert_allclose(t.arrival_s, [0.0, 0.0, 0.25, 1.25, 3.0])
    assert t.prompt_tokens.tolist() == [1000, 1500, 100, 2049, 512]
    assert t.prefix_block_tokens == 512
    offsets, ids = t.prefix_hashes  # type: ignore[misc]
    assert offsets.tolist() == [0, 2, 5, 6, 11, 12]
    assert ids.tolist() == [0, 1, 0, 1, 2, 3, 0, 4, 5, 6, 7, 8]
    assert t.blocks_of(3).tolist() == [0, 4, 5, 6, 7]
    # One block id per started 512-token block of the prompt.
    assert np.array_equal(np.diff(offsets), -(-t.prompt_tokens // 512))


def test_auto_format_by_extension() -> None:
    assert detect_format(AZURE) == "azure" and detect_format(MOONCAKE) == "mooncake"
    assert len(read_trace(AZURE)) == 5 and read_trace(MOONCAKE).block_ids is not None
    with pytest.raises(InputError, match="cannot tell the format of .*trace.txt"):
        detect_format(Path("trace.txt"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="workload.arrival.path: got '.*none.csv'; no such file"):
        read_trace(tmp_path / "none.csv", field="workload.arrival.path")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_azure_missing_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "TIMESTAMP,Context\n2023-11-16 18:17:03.9799600,5\n")
    with pytest.raises(InputError) as info:
        read_azure_trace(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "missing column(s) ContextTokens, GeneratedTokens" in msg


@pytest.mark.parametrize(
    ("line3", "expect"),
    [
        ("2023-11-16 18:17:04.1,12x,5", ":3: got '12x'; ContextTokens must be an integer >= 1"),
        ("2023-11-16 18:17:04.1,12,0", ":3: got '0'; GeneratedTokens must be an integer >= 1"),
        ("2023-11-16 18:17:04.1,12.5,3", ":3: got '12.5'; ContextTokens must be an integer >= 1"),
        ("yesterday,12,5", ":3: got 'yesterday'; TIMESTAMP must be a date-time"),
        ("2023-11-16 18:17:04.1,inf,5", ":3: got 'inf'; ContextTokens must be an integer >= 1"),
        ("", ":3: got ''; TIMESTAMP must be a date-time"),
        ("2023-11-16 18:17:04.1,12,5,9", ":3: got '4 fields'; rows need 3 fields, as the header"),
    ],
)
def test_azure_bad_row_named_by_line(tmp_path: Path, line3: str, expect: str) -> None:
    text = f"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n{line3}\n2023-11-16 18:17:05,1,1\n"
    path = _write(tmp_path, "t.csv", text)
    with pytest.raises(InputError) as info:
        read_azure_trace(path)
    assert str(info.value).startswith(f"{path}{expect}")


def test_mooncake_missing_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.jsonl", '{"timestamp": 0, "in": 5, "output_length": 3}\n')
    with pytest.raises(InputError, match=r"t.jsonl: got \"keys .*\"; missing column\(s\) input_length"):
        read_mooncake_trace(path)


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ('{"timestamp": 5, "input_length": "9", "output_length": 3}', "got '9'; input_length must be an integer >= 1"),
        ('{"timestamp": -5, "input_length": 9, "output_length": 3}', "got -5; timestamp must be a number >= 0"),
        ('{"timestamp": 5, "input_length": 9}', "missing key output_length"),
        ('{"timestamp": Infinity, "input_length": 9, "output_length": 3}', "got inf; timestamp must be a number >= 0"),
        ('{"timestamp": 5, "input_length": 1e300, "output_length": 3}', "got 1e+300; input_length must be below 2^53"),
        ('{"timestamp": 5, "input_length": 9, "output_length": 3', "each line must be one JSON object"),
        ('{"timestamp": 5, "input_length": 9, "output_length": 3, "hash_ids": [1, "a"]}', "hash_ids must be a list of integers"),
    ],
)
def test_mooncake_bad_row_named_by_line(tmp_path: Path, line: str, expect: str) -> None:
    good = '{"timestamp": 0, "input_length": 9, "output_length": 3' + (', "hash_ids": [1]}' if "hash_ids" in line else "}")
    path = _write(tmp_path, "t.jsonl", f"{good}\n\n{line}\n{good}\n")  # line 2 is blank
    with pytest.raises(InputError) as info:
        read_mooncake_trace(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:3: ") and expect in msg


def test_unsorted_trace_is_sorted_with_note(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.jsonl",
        '{"timestamp": 2000, "input_length": 600, "output_length": 1, "hash_ids": [7, 8]}\n'
        '{"timestamp": 1000, "input_length": 100, "output_length": 2, "hash_ids": [9]}\n',
    )
    t = read_mooncake_trace(path)
    assert t.arrival_s.tolist() == [1.0, 2.0]
    assert t.output_tokens.tolist() == [2, 1] and t.block_ids.tolist() == [9, 7, 8]  # type: ignore[union-attr]
    assert t.notes and "sorted" in t.notes[0]


def test_reader_is_cached_and_sees_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.jsonl", '{"timestamp": 0, "input_length": 9, "output_length": 3}\n')
    assert read_mooncake_trace(path) is read_mooncake_trace(path)
    path.write_text('{"timestamp": 0, "input_length": 9, "output_length": 3}\n{"timestamp": 1, "input_length": 9, "output_length": 3}\n')
    assert len(read_mooncake_trace(path)) == 2


def test_tables_are_read_only() -> None:
    t = read_azure_trace(AZURE)
    with pytest.raises(ValueError):
        t.prompt_tokens[0] = 1


# ---------------------------------------------------------------- real traces

# Published figures: ../shared/traces/ATTRIBUTION.md (Azure: Patel et al., ISCA 2024; Mooncake: Qin et al., FAST 2025).
REAL = [
    ("AzureLLMInferenceTrace_code.csv", 8_819, 2_048, 28, 2.57),
    ("AzureLLMInferenceTrace_conv.csv", 19_366, 1_155, 211, 5.53),
    ("mooncake_conversation_trace.jsonl", 12_031, 12_035, 343, None),
    ("mooncake_synthetic_trace.jsonl", 3_993, 15_325, 149, None),
]


@needs_shared_traces
@pytest.mark.parametrize(("name", "rows", "input_mean", "output_mean", "rate"), REAL)
def test_real_trace_published_figures(name: str, rows: int, input_mean: float, output_mean: float, rate: float | None) -> None:
    t = read_trace(SHARED_TRACES / name)
    assert len(t) == rows
    assert t.prompt_tokens.mean() == pytest.approx(input_mean, rel=0.01)
    assert t.output_tokens.mean() == pytest.approx(output_mean, rel=0.01)
    if rate is not None:
        assert t.offered_rate == pytest.approx(rate, rel=0.01)
    assert t.arrival_s[0] == 0.0 and np.all(np.diff(t.arrival_s) >= 0)
    assert t.prompt_tokens.min() >= 1 and t.output_tokens.min() >= 1


@needs_shared_traces
@pytest.mark.parametrize("name", ["AzureLLMInferenceTrace_conv.csv", "mooncake_conversation_trace.jsonl"])
def test_real_trace_reads_fast(name: str, tmp_path: Path) -> None:
    copy = tmp_path / name  # a fresh file, so the reader's cache cannot answer
    shutil.copyfile(SHARED_TRACES / name, copy)
    start = time.perf_counter()
    t = read_trace(copy)
    elapsed = time.perf_counter() - start
    assert len(t) > 10_000 and elapsed < 1.0


@needs_shared_traces
def test_real_mooncake_blocks_cover_prompts() -> None:
    t = read_mooncake_trace(SHARED_TRACES / "mooncake_conversation_trace.jsonl")
    blocks = np.diff(t.block_offsets)  # type: ignore[arg-type]
    assert np.array_equal(blocks, -(-t.prompt_tokens // 512))
    # ATTRIBUTION.md: about 36.6% of 512-token prefix blocks are reused in the conversation trace.
    reused = 1 - len(np.unique(t.block_ids)) / len(t.block_ids)  # type: ignore[arg-type]
    assert reused == pytest.approx(0.366, abs=0.01)


def test_azure_csv_goes_through_the_input_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like JSONL traces: bounded size, UTF-8 with the bad byte's offset, a byte-order mark dropped."""
    body = AZURE.read_bytes()
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + body)                 # Excel's "CSV UTF-8" starts with a BOM
    assert read_azure_trace(bom).prompt_tokens.tolist() == read_azure_trace(AZURE).prompt_tokens.tolist()
    latin = tmp_path / "latin.csv"
    latin.write_bytes(body + b"caf\xe9,1,2\n")
    with pytest.raises(InputError, match=f"must be UTF-8 text \\(bad byte at offset {len(body) + 3}\\)"):
        read_azure_trace(latin)
    monkeypatch.setattr(traces, "MAX_TRACE_BYTES", 100)
    big = tmp_path / "big.csv"                               # a new file: the reader caches by file
    big.write_bytes(body)
    with pytest.raises(InputError, match=f"the file has {len(body):,} bytes; at most 100 are read"):
        read_azure_trace(big)
