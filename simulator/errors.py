"""User-facing errors: one line naming the field, the bad value and what is allowed."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class ServesimError(Exception):
    """An error caused by user input. The CLI prints ``str(err)`` and exits with code 2."""


class InputError(ServesimError):
    """A bad value in a named field."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: got {value!r}; {allowed}")


class DoesNotFitError(ServesimError):
    """A model (or its KV cache) does not fit in the memory of the chosen GPUs."""


def unknown_name(field: str, value: str, choices: Iterable[str]) -> InputError:
    """An :class:`InputError` for an unknown catalog name, suggesting close matches."""
    names = sorted(choices)
    close = difflib.get_close_matches(value.lower(), names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return InputError(field, value, f"{hint}known: {', '.join(names)}")
