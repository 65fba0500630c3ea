"""The one boundary every user-given file crosses: bounded size, UTF-8, bounded nesting and aliases.

Scenario and sweep files, ``base_file``, price files, GPU and engine profiles, catalog-format model
files, Hugging Face ``config.json`` files, JSONL traces and ``--set`` values are read here, so that
a file of any content ends in data or in one :class:`~simulator.errors.InputError` line, never in a
traceback, a hang or a memory blow-up:

* a path whose name exceeds the file system's limits is refused by name (not ``OSError``);
* a file larger than :data:`MAX_FILE_BYTES` (configuration) or :data:`MAX_TRACE_BYTES` (traces) is
  refused before it is read;
* bytes that are not UTF-8 are reported with their offset;
* nesting deeper than :data:`MAX_DEPTH` (YAML or JSON) is refused before the recursive parts of
  the parsers see it;
* YAML aliases (``*name``) may repeat a value, but a document whose aliases expand beyond
  :data:`MAX_NODES` values (the "billion laughs") is refused.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, excerpt

#: Largest configuration file read (scenario, sweep, prices, profiles, config.json): 16 MiB.
MAX_FILE_BYTES = 16 * 2**20
#: Largest JSONL trace or length file read into memory: 4 GiB (the resource guard bounds the rest).
MAX_TRACE_BYTES = 4 * 2**30
#: Deepest nesting of lists and mappings in a YAML or JSON document.
MAX_DEPTH = 64
#: Most values a YAML document may hold once its aliases are expanded.
MAX_NODES = 100_000
#: Longest file or folder name (bytes) and path (bytes), as POSIX file systems allow.
NAME_MAX, PATH_MAX = 255, 4096


def check_path(path: str | os.PathLike[str], field: str) -> Path:
    """``path`` as a :class:`Path`, refusing names no file system holds (instead of ``OSError``)."""
    text = os.fspath(path)
    if "\x00" in text:
        raise InputError(field, text, "a path cannot contain a NUL character")
    raw = os.fsencode(text)
    if len(raw) > PATH_MAX or any(len(part) > NAME_MAX for part in raw.split(b"/")):
        raise InputError(field, text, f"a path of at most {PATH_MAX} bytes with names of at most {NAME_MAX} bytes")
    return Path(text).expanduser()


def is_file(path: str | os.PathLike[str], field: str) -> bool:
    """Whether ``path`` names a readable regular file (names too long to exist are refused)."""
    p = check_path(path, field)
    try:
        return p.is_file()
    except OSError:
        return False


def is_dir(path: str | os.PathLike[str], field: str) -> bool:
    """Whether ``path`` names a folder (names too long to exist are refused)."""
    p = check_path(path, field)
    try:
        return p.is_dir()
    except OSError:
        return False


def read_bytes(path: str | os.PathLike[str], field: str, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, at most ``max_bytes`` (default :data:`MAX_FILE_BYTES`) long."""
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    p = check_path(path, field)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise InputError(field, str(p), "not a file")
        if size > max_bytes:
            raise InputError(field, str(p), f"the file has {size:,} bytes; at most {max_bytes:,} are read")
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(field, str(p), "no such file") from None
    except OSError as e:
        raise InputError(field, str(p), f"cannot be read ({e.strerror or e})") from None


def read_text(path: str | os.PathLike[str], field: str, max_bytes: int | None = None) -> str:
    """The UTF-8 text of a file, at most ``max_bytes`` (default :data:`MAX_FILE_BYTES`) long."""
    p = check_path(path, field)
    return decode(read_bytes(p, field, max_bytes), f"{field} ({p})" if field != str(p) else field)


def decode(data: bytes, field: str) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped); the offset of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(field, data[max(e.start - 10, 0):e.start + 10],
                         f"must be UTF-8 text (bad byte at offset {e.start}); re-save the file as UTF-8") from None


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that refuses deep nesting while composing (before any recursion grows)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth = getattr(self, "_depth", 0) + 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _TooDeep(f"nesting deeper than {MAX_DEPTH} levels at line {mark.line + 1}")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _TooDeep(Exception):
    pass


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values under ``node`` once aliases are expanded (shared nodes counted each time they appear)."""
    stack = [(node, False)]
    while stack:
        n, ready = stack.pop()
        if not ready and id(n) in memo:
            continue
        if isinstance(n, yaml.ScalarNode):
            memo[id(n)] = 1
            continue
        kids = [x for pair in n.value for x in pair] if isinstance(n, yaml.MappingNode) else list(n.value)
        if ready:
            sizes = [memo[id(k)] for k in kids]
            memo[id(n)] = MAX_NODES + 1 if -1 in sizes else min(1 + sum(sizes), MAX_NODES + 1)
        else:
            memo[id(n)] = -1  # on the stack: a recursive alias never completes
            stack.append((n, True))
            stack.extend((k, False) for k in kids if id(k) not in memo)
    return memo[id(node)]


def load_yaml(text: str, field: str) -> Any:
    """Parse YAML text with bounded nesting and bounded alias expansion; one-line errors."""
    if len(text) > MAX_FILE_BYTES:
        raise InputError(field, text, f"at most {MAX_FILE_BYTES:,} characters of YAML")
    try:
        loader = _BoundedLoader(text)
    except yaml.YAMLError as err:   # a character YAML does not allow (checked up front)
        raise InputError(field, "text", f"invalid YAML: {' '.join(str(err).split())[:160]}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise InputError(field, "aliases", f"YAML aliases expand to more than {MAX_NODES:,} values; "
                                               "write the values out or use fewer aliases")
        try:
            return loader.construct_document(node)
        except (ValueError, TypeError, IndexError, KeyError, OverflowError) as err:  # e.g. "!!int ''"
            raise InputError(field, "a tagged value", f"invalid YAML: cannot construct a value ({err})") from None
    except _TooDeep as e:
        raise InputError(field, "nesting", f"invalid YAML: {e}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(err, "problem", None) or " ".join(str(err).split())[:160]
        raise InputError(field, where, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise InputError(field, "nesting", f"invalid YAML: nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def read_yaml(path: str | os.PathLike[str], field: str) -> Any:
    """A YAML file through :func:`read_text` and :func:`load_yaml`."""
    return load_yaml(read_text(path, field), field)


def load_json(text: str, field: str) -> Any:
    """Parse JSON with bounded nesting (the C parser recurses); one-line errors."""
    if text.count("[") + text.count("{") > MAX_DEPTH and _json_depth(text) > MAX_DEPTH:
        raise InputError(field, text, f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(field, e.doc[max(e.pos - 20, 0):e.pos + 20],
                         f"must be valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise InputError(field, text, f"JSON nested deeper than {MAX_DEPTH} levels") from None


def _json_depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text (brackets inside strings ignored)."""
    depth = deepest = 0
    for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', text):
        t = token.group()
        if t in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif t in "]}":
            depth -= 1
    return deepest


__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "MAX_TRACE_BYTES", "check_path", "decode", "excerpt",
           "is_file", "load_json", "load_yaml", "read_text", "read_yaml"]
