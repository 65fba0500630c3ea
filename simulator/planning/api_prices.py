"""LLM API prices per million tokens, from the ``genai-prices`` package (pinned 0.2.5) or a user file.

Names are the package's model references (``gpt-4o-mini``, ``claude-sonnet-4-5``); prefix a
provider to choose one (``together:meta-llama/Llama-3.3-70B-Instruct-Turbo``). A user file
(``--api-prices FILE``) prices models the package lacks, or replaces its prices::

    currency: USD
    models:
      my-model: {input_per_mtok: 0.2, output_per_mtok: 0.6, cached_input_per_mtok: 0.05,
                 batch_discount: 0.5, source: "provider pricing page", date: "2026-11-01"}
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..config.loader import read_yaml, validate
from ..errors import InputError
from ..schema import StrictModel

PACKAGE = "genai-prices"
#: Release dates of genai-prices versions (PyPI upload time, https://pypi.org/project/genai-prices/,
#: read 2026-12-07): the date of the bundled price data, shown with every price taken from it.
RELEASE_DATES = {"0.2.3": "2026-11-10", "0.2.5": "2026-11-19"}


class ApiOverride(StrictModel):
    """Prices of one API model in US dollars per million tokens."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0, description="default: the input price")
    batch_discount: float | None = Field(None, ge=0, lt=1, description="share off with the batch API, e.g. 0.5")
    source: str = Field(min_length=1)
    date: str = Field(min_length=4)


class ApiPriceFile(StrictModel):
    """A user API price file."""

    currency: Literal["USD"] = "USD"
    models: dict[str, ApiOverride]


@dataclass(frozen=True)
class ApiPrice:
    """US dollars per million input, cached-input and output tokens (standard and batch)."""

    model: str
    provider: str
    input_per_mtok: float
    cached_input_per_mtok: float
    output_per_mtok: float
    batch_input_per_mtok: float | None
    batch_output_per_mtok: float | None
    source: str
    date: str

    def per_request(self, prompt_tokens: float, output_tokens: float, cached_share: float = 0.0,
                    batch: bool = False) -> float:
        """Dollars for one request of these token counts, ``cached_share`` of the prompt cached."""
        if batch:
            if self.batch_input_per_mtok is None or self.batch_output_per_mtok is None:
                raise InputError("--api-batch", self.model, "no batch prices for this model")
            scale = self.batch_input_per_mtok / self.input_per_mtok if self.input_per_mtok else 1.0
            inp, cached, out = self.batch_input_per_mtok, self.cached_input_per_mtok * scale, self.batch_output_per_mtok
        else:
            inp, cached, out = self.input_per_mtok, self.cached_input_per_mtok, self.output_per_mtok
        return (prompt_tokens * ((1 - cached_share) * inp + cached_share * cached) + output_tokens * out) / 1e6


def load_api_overrides(path: str | Path | None) -> dict[str, ApiOverride]:
    """The models of a user API price file (empty without a file)."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise InputError("--api-prices", str(p), "no such file")
    return dict(validate(ApiPriceFile, read_yaml(p), prefix=str(p)).models)


def _snapshot() -> Any:
    try:
        from genai_prices import data_snapshot
    except ImportError:
        raise InputError("--api", PACKAGE, "API prices need the genai-prices package: pip install 'servesim[prices]'"
                         " (or give every model in --api-prices FILE)") from None
    return data_snapshot.get_snapshot()


def _version() -> str:
    from importlib.metadata import version
    return version(PACKAGE)


def data_date() -> str:
    """The date of genai-prices' bundled data: its release date (the data is not updated after install)."""
    v = _version()
    return f"{RELEASE_DATES[v]} (genai-prices {v} release)" if v in RELEASE_DATES else \
        f"date unknown (genai-prices {v}, released after this table)"


def api_model_names(contains: str = "") -> list[str]:
    """``provider:model`` names the package prices (containing ``contains``, case-insensitive)."""
    snap = _snapshot()
    names = sorted({f"{p.id}:{m.id}" for p in snap.providers for m in p.models})
    return [n for n in names if contains.lower() in n.lower()]


def _unit(v: Any, prompt_tokens: float) -> float | None:
    """A price value as float, picking the tier that a ``prompt_tokens`` request falls in."""
    if v is None:
        return None
    if isinstance(v, Decimal):
        return float(v)
    price = v.base
    for tier in sorted(v.tiers, key=lambda t: t.start):
        if prompt_tokens > tier.start:
            price = tier.price
    return float(price)


def api_price(name: str, *, prompt_tokens: float = 0.0, overrides: dict[str, ApiOverride] | None = None,
              when: datetime | None = None) -> ApiPrice:
    """Prices of an API model: from ``overrides`` when it names the model, else from genai-prices.

    ``prompt_tokens`` (per request) picks the tier of tiered prices; ``when`` picks dated prices
    (default: now). Unknown names raise an :class:`InputError` suggesting close names.
    """
    if overrides and name in overrides:
        o = overrides[name]
        disc = o.batch_discount
        return ApiPrice(name, "user file", o.input_per_mtok,
                        o.cached_input_per_mtok if o.cached_input_per_mtok is not None else o.input_per_mtok,
                        o.output_per_mtok, None if disc is None else o.input_per_mtok * (1 - disc),
                        None if disc is None else o.output_per_mtok * (1 - disc), o.source, o.date)
    snap = _snapshot()
    provider_id, ref = (name.split(":", 1) if ":" in name else (None, name))
    try:
        provider, model = snap.find_provider_model(ref, None, provider_id, None)
    except LookupError:
        raise _unknown(name, snap, overrides) from None
    when = when or datetime.now(timezone.utc)
    std = model.get_prices(when)
    batch = model.get_prices(when, {"processing": "batch"}) if model.price_variants else std
    inp, out = _unit(std.input_mtok, prompt_tokens), _unit(std.output_mtok, prompt_tokens)
    if inp is None or out is None:
        raise InputError("--api", name, f"{PACKAGE} has no per-token input/output price for {provider.id}:{model.id}; "
                                        "give it in --api-prices FILE")
    cached = _unit(std.cache_read_mtok, prompt_tokens)
    b_in, b_out = _unit(batch.input_mtok, prompt_tokens), _unit(batch.output_mtok, prompt_tokens)
    has_batch = batch is not std and (b_in, b_out) != (inp, out)
    return ApiPrice(model.id, provider.id, inp, cached if cached is not None else inp, out,
                    b_in if has_batch else None, b_out if has_batch else None,
                    f"{PACKAGE}=={_version()} bundled prices ({provider.name}, {model.id})", data_date())


def _unknown(name: str, snap: Any, overrides: dict[str, ApiOverride] | None) -> InputError:
    ids = {m.id.lower(): m.id for p in snap.providers for m in p.models}
    ids.update({f"{p.id}:{m.id}".lower(): f"{p.id}:{m.id}" for p in snap.providers for m in p.models})
    ids.update({k.lower(): k for k in overrides or {}})
    close = difflib.get_close_matches(name.lower(), list(ids), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(ids[c] for c in close)}? " if close else ""
    return InputError("--api", name, f"{hint}unknown to {PACKAGE} ({len(ids)} names; list them with "
                                     f"`servesim cost --list-api TEXT`) and to --api-prices")
