"""User-facing errors: one line naming the field, the bad value and what is allowed."""
from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable

_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlong = 40
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 4
#: The longest excerpt of a bad value an error message prints, characters.
EXCERPT_CHARS = 120


def excerpt(value: object) -> str:
    """A bounded ``repr`` of ``value``: a few items, a few levels, at most :data:`EXCERPT_CHARS` characters.

    Costs the same for a value of ten bytes or ten gigabytes (shared or aliased structure included)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a value whose __repr__ fails still gets a message
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS - 3] + "..."


class ServesimError(Exception):
    """An error caused by user input. The CLI prints ``str(err)`` and exits with code 2."""


class InputError(ServesimError):
    """A bad value in a named field."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{excerpt_text(field, 300)}: got {excerpt(value)}; {allowed}")


def excerpt_text(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class DoesNotFitError(ServesimError):
    """A model (or its KV cache) does not fit in the memory of the chosen GPUs."""


def unknown_name(field: str, value: str, choices: Iterable[str]) -> InputError:
    """An :class:`InputError` for an unknown catalog name, suggesting close matches."""
    names = sorted(choices)
    close = difflib.get_close_matches(value.lower()[:200], names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return InputError(field, value, f"{hint}known: {', '.join(names)}")
