"""GPU rental prices (US dollars per GPU-hour) from ``planning/data/gpu_prices.yaml`` or a user file.

A price file maps GPU profile names to offers; each offer names its provider, what was priced,
the kind (on-demand, reserved, spot), the price, its date and its source. A user file given with
``--prices FILE`` has the same schema; its GPUs replace the built-in offers for those GPUs.
"""
from __future__ import annotations

import math
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from ..catalog.gpus import list_gpus, resolve_gpu_name
from ..config.loader import read_yaml, validate
from ..errors import InputError
from ..schema import StrictModel

DEFAULT_PRICE_FILE = Path(__file__).resolve().parent / "data" / "gpu_prices.yaml"
PriceKind = Literal["on-demand", "reserved", "spot"]
PRICE_KINDS: tuple[str, ...] = ("on-demand", "reserved", "spot")


class PriceEntry(StrictModel):
    """One offer: ``usd_per_gpu_hour`` for one GPU of the profile, from ``source`` as of ``date``."""

    provider: str = Field(min_length=1)
    offer: str = Field(min_length=1)
    kind: PriceKind
    usd_per_gpu_hour: PositiveFloat
    date: str = Field(min_length=4, description="date of the source (ISO)")
    source: str = Field(min_length=1)
    instance_usd_per_hour: PositiveFloat | None = None
    gpus_per_instance: PositiveInt | None = None
    note: str | None = None
    estimate: bool = False
    reason: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "PriceEntry":
        if (self.instance_usd_per_hour is None) != (self.gpus_per_instance is None):
            raise ValueError("give both instance_usd_per_hour and gpus_per_instance, or neither")
        if self.instance_usd_per_hour is not None and self.gpus_per_instance is not None:
            per_gpu = self.instance_usd_per_hour / self.gpus_per_instance
            if abs(per_gpu - self.usd_per_gpu_hour) > 0.005 * per_gpu + 0.001:
                raise ValueError(f"usd_per_gpu_hour ({self.usd_per_gpu_hour}) must equal instance_usd_per_hour / "
                                 f"gpus_per_instance ({per_gpu:.4f})")
        if self.estimate and not self.reason:
            raise ValueError("an estimate needs a reason")
        return self


class PriceFile(StrictModel):
    """A price file: currency, unit, and offers per GPU profile name."""

    currency: Literal["USD"] = "USD"
    unit: Literal["per GPU-hour"] = "per GPU-hour"
    prices: dict[str, list[PriceEntry]]


class PriceBook:
    """Offers per GPU profile name, and where they came from."""

    def __init__(self, prices: dict[str, list[PriceEntry]], files: list[str]) -> None:
        self.prices, self.files = prices, files

    def gpus(self, kind: str | None = None) -> list[str]:
        """GPU profile names with at least one offer (of ``kind`` when given)."""
        return sorted(g for g, offers in self.prices.items() if any(kind in (None, o.kind) for o in offers))

    def find(self, gpu: str, kind: str = "on-demand", provider: str | None = None) -> PriceEntry | None:
        """The cheapest offer of ``kind`` (and ``provider``) for ``gpu``, or None when there is none."""
        if kind not in PRICE_KINDS:
            raise InputError("--price-kind", kind, f"allowed: {', '.join(PRICE_KINDS)}")
        name = resolve_gpu_name(gpu) if not str(gpu).endswith((".yaml", ".yml")) else str(gpu)
        offers = [o for o in self.prices.get(name, []) if o.kind == kind
                  and (provider is None or o.provider.lower() == provider.lower())]
        return min(offers, key=lambda o: o.usd_per_gpu_hour) if offers else None

    def offer(self, gpu: str, kind: str = "on-demand", provider: str | None = None) -> PriceEntry:
        """The cheapest offer of ``kind`` (and ``provider``) for ``gpu``; an error when there is none."""
        found = self.find(gpu, kind, provider)
        if found is None:
            priced = ", ".join(self.gpus(kind)) or "none"
            who = f" from {provider}" if provider else ""
            raise InputError("gpu", gpu, f"no {kind} price{who} in {', '.join(self.files)} (priced: {priced}); "
                                         f"add one with --prices FILE or --price GPU=USD_PER_HOUR")
        return found


def _read(path: Path) -> PriceFile:
    return validate(PriceFile, read_yaml(path), prefix=str(path))


@lru_cache(maxsize=1)
def _default() -> PriceFile:
    return _read(DEFAULT_PRICE_FILE)


def parse_price(text: str, kind: str = "on-demand") -> tuple[str, PriceEntry]:
    """A ``--price GPU=USD_PER_HOUR`` argument as (profile name, offer of ``kind``, dated today)."""
    gpu, sep, value = str(text).partition("=")
    try:
        usd = float(value) if sep else math.nan
    except ValueError:
        usd = math.nan
    if not gpu.strip() or not math.isfinite(usd) or usd <= 0:
        raise InputError("--price", text, "give GPU=USD_PER_HOUR, a GPU profile and a positive price per GPU-hour, "
                                          "e.g. h200-sxm=3.50")
    try:
        name = resolve_gpu_name(gpu.strip())
    except InputError as err:
        raise InputError("--price", text, f"not a GPU profile ({err.allowed})") from None
    if kind not in PRICE_KINDS:
        raise InputError("--price-kind", kind, f"allowed: {', '.join(PRICE_KINDS)}")
    entry = PriceEntry(provider="user", offer="--price on the command line", kind=kind,  # type: ignore[arg-type]
                       usd_per_gpu_hour=usd, date=date.today().isoformat(), source="--price on the command line")
    return name, entry


def load_prices(override: str | Path | None = None, extra: list[str] | tuple[str, ...] = (),
                extra_kind: str = "on-demand") -> PriceBook:
    """The built-in price file, with the GPUs of ``override`` (same schema) replacing its offers, and
    ``extra`` (``GPU=USD_PER_HOUR`` texts, offers of ``extra_kind``) replacing that kind's offers."""
    prices = {g: list(v) for g, v in _default().prices.items()}
    files = [str(DEFAULT_PRICE_FILE.relative_to(DEFAULT_PRICE_FILE.parents[3]))]
    if override is not None:
        p = Path(override)
        if not p.is_file():
            raise InputError("--prices", str(p), "no such file")
        user = _read(p)
        for gpu, offers in user.prices.items():
            try:
                prices[resolve_gpu_name(gpu)] = list(offers)
            except InputError as err:
                raise InputError(f"{p}:prices.{gpu}", gpu, f"not a GPU profile ({err.allowed})") from None
        files.append(str(p))
    for text in extra:
        gpu, entry = parse_price(text, extra_kind)
        prices[gpu] = [o for o in prices.get(gpu, []) if o.kind != entry.kind] + [entry]
    if extra:
        files.append("--price")
    known = set(list_gpus())
    for gpu in prices:
        if gpu not in known:
            raise InputError("gpu_prices.yaml:prices", gpu, f"not a GPU profile; known: {', '.join(sorted(known))}")
    return PriceBook(prices, files)
