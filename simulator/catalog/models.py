"""Model catalog: find and load model architectures by name, or from a Hugging Face ``config.json``.

Catalog entries live in ``simulator/catalog/models/<name>.yaml``; every architecture figure in
them carries a source. ``load_model`` also accepts a path to a Hugging Face ``config.json`` (or
a directory holding one), translated by :func:`model_from_hf_config`.
"""
from __future__ import annotations

import datetime as _dt
import functools
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveFloat, ValidationError, model_validator

from ..errors import InputError, unknown_name
from ..inputs import check_path, load_json, read_text, read_yaml
from ..paths import catalog_dir
from .hf_ids import variant_index, variant_key
from .model import MLASpec, ModelArch, MoESpec
from ..schema import StrictModel

__all__ = ["CatalogEntry", "PublishedParams", "catalog_entry", "list_models", "load_model",
           "model_from_hf_config"]


class PublishedParams(StrictModel):
    """Parameter counts the model's authors (or its checkpoint) report, for cross-checking."""

    total: PositiveFloat                  # parameters stored (elements)
    active: PositiveFloat                 # parameters used per token
    source: str = Field(min_length=1)
    date: str = Field(min_length=4)
    # Some authors leave the input embedding (a table lookup) out of "active" but keep the
    # output head in (DeepSeek-V3, gpt-oss); set this to say so.
    active_excludes_input_embedding: bool = False
    exact: bool = False                   # an exact count (e.g. from the checkpoint), not a rounded figure
    note: str = ""


class CatalogEntry(StrictModel):
    """One ``models/<name>.yaml`` file."""

    name: str = Field(min_length=1)
    display_name: str = Field(min_length=1)
    hf_id: str = Field(min_length=1)
    source_date: str = Field(min_length=4)     # when the figures were last checked
    published_params: PublishedParams | None = None
    arch: dict[str, Any]
    sources: dict[str, str]

    @model_validator(mode="after")
    def _every_key_sourced(self) -> "CatalogEntry":
        missing = sorted(set(self.arch) - set(self.sources))
        stray = sorted(set(self.sources) - set(self.arch))
        if missing or stray:
            raise ValueError(f"sources must name exactly the arch keys (missing {missing}, stray {stray})")
        empty = sorted(k for k, v in self.sources.items() if not v.strip())
        if empty:
            raise ValueError(f"empty source for {empty}")
        return self

    def to_arch(self) -> ModelArch:
        """The :class:`ModelArch` this entry describes."""
        return ModelArch(name=self.name, source=f"catalog entry {self.name} (per-figure sources in its YAML)",
                         source_date=self.source_date, **self.arch)


# ---- registry ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _entries() -> dict[str, CatalogEntry]:
    out: dict[str, CatalogEntry] = {}
    for path in sorted(catalog_dir("models").glob("*.yaml")):
        entry = _read_entry(path)
        if entry.name != path.stem:
            raise InputError(str(path), entry.name, f"name must match the file name {path.stem!r}")
        out[entry.name] = entry
    return out


def _read_entry(path: Path) -> CatalogEntry:
    raw = read_yaml(path, str(path))
    if not isinstance(raw, dict):
        raise InputError(str(path), type(raw).__name__, "must be a YAML mapping of a model entry")
    try:
        return CatalogEntry(**raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path.name}:{where}", err.get("input"), err["msg"]) from None


@functools.lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Lower-cased name, display name and hf_id -> catalog name."""
    out: dict[str, str] = {}
    for name, e in _entries().items():
        for alias in (name, e.display_name, e.hf_id, e.hf_id.split("/")[-1]):
            out.setdefault(alias.lower(), name)
    return out


@functools.lru_cache(maxsize=1)
def _variants() -> dict[str, str]:
    """Variant key of each entry's hf_id -> catalog name (see :mod:`.hf_ids` for the rule)."""
    return variant_index({name: e.hf_id for name, e in _entries().items()})


def _catalog_name(key: str) -> str | None:
    """The catalog name a name, display name, hf_id or a variant of an hf_id refers to."""
    return _aliases().get(key.lower()) or _variants().get(variant_key(key))


def list_models() -> list[str]:
    """Catalog model names, sorted."""
    return sorted(_entries())


def _resolve(name: str) -> str:
    found = _catalog_name(name.strip())
    if found:
        return found
    raise unknown_name("model", name, list_models())


def catalog_entry(name: str) -> dict[str, Any]:
    """The raw catalog entry (display_name, hf_id, published_params, arch, sources) of a model."""
    return _entries()[_resolve(name)].model_dump()


def _arch_of(entry: CatalogEntry, file_name: str) -> ModelArch:
    try:
        return entry.to_arch()
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{file_name}:arch{'.' + where if where else ''}", err.get("input"), err["msg"]) from None


@functools.lru_cache(maxsize=None)
def _load_catalog_model(name: str) -> ModelArch:
    return _arch_of(_entries()[name], f"{name}.yaml")


def load_model(name_or_path: str) -> ModelArch:
    """A model by catalog name (case-insensitive; display name, hf_id or a Hugging Face id of a
    post-trained or re-quantised variant, see :mod:`.hf_ids`, also work), or from a
    Hugging Face ``config.json`` path (or a directory containing one), or a catalog-format YAML file.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise InputError("model", name_or_path, "give a catalog model name or a path to a config.json")
    key = name_or_path.strip()
    if key.lower() in _aliases():
        return _load_catalog_model(_aliases()[key.lower()])
    if "/" not in key and len(key.encode()) > 255:   # no file has such a name: an unknown model name
        raise unknown_name("model", key, list_models())
    path = check_path(key, "model")
    if path.is_dir():
        path = path / "config.json"
        if not path.is_file():
            raise InputError("model", key, "directory has no config.json")
    if path.is_file():
        if path.suffix in (".yaml", ".yml"):
            return _arch_of(_read_entry(path), path.name)
        return _model_from_hf_file(path)
    found = _catalog_name(key) if not path.exists() else None
    if found:
        return _load_catalog_model(found)
    if path.suffix in (".json", ".yaml", ".yml") or key.startswith((".", "/", "~")) or key.count("/") > 1:
        raise InputError("model", key, "no such file")
    raise unknown_name("model", key, list_models())


def _model_from_hf_file(path: Path) -> ModelArch:
    cfg = load_json(read_text(path, str(path)), str(path))
    if not isinstance(cfg, dict):
        raise InputError(str(path), type(cfg).__name__, "must hold a JSON object (a Hugging Face config)")
    name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    mtime = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc).date().isoformat()
    return model_from_hf_config(cfg, name=name, source=f"Hugging Face config {path}", source_date=mtime)


# ---- Hugging Face config.json -------------------------------------------------------------------

_NO_GATE = {"gpt2", "gpt_neox", "gptj", "opt", "falcon", "phi", "starcoder2", "gpt_bigcode", "bloom", "mpt"}
_LAYERNORM = _NO_GATE | {"phi3small", "stablelm", "olmo"}
_QK_NORM = {"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2", "olmoe", "cohere2"}
_QWEN2_BIAS = {"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl"}     # q/k/v carry biases, o does not
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text"}    # HF config classes default to tied
_ALIASES = {"hidden_size": ("n_embd", "d_model"), "num_hidden_layers": ("n_layer", "num_layers"),
            "num_attention_heads": ("n_head",), "intermediate_size": ("n_inner", "ffn_dim")}


class _Cfg:
    """Typed reads from a config dict; errors name ``config.json:<key>``."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg

    def raw(self, key: str) -> Any:
        for k in (key, *_ALIASES.get(key, ())):
            if self.cfg.get(k) is not None:
                return self.cfg[k]
        return None

    def int(self, key: str, why: str | None = None, default: int | None = None) -> int | None:
        v = self.raw(key)
        if v is None:
            if why is not None:
                raise InputError(f"config.json:{key}", None, f"required for {why}")
            return default
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InputError(f"config.json:{key}", v, "must be a non-negative integer")
        if why is not None and v == 0:
            raise InputError(f"config.json:{key}", v, f"must be a positive integer (required for {why})")
        return v

    def bool(self, key: str) -> bool | None:
        v = self.raw(key)
        if v is None:
            return None
        if not isinstance(v, bool):
            raise InputError(f"config.json:{key}", v, "must be true or false")
        return v


#: Keys of hybrid models whose layers are not all attention (Jamba, Nemotron-H, Falcon-H1, Qwen3-Next style
#: linear attention, Mamba); with ``layer_types`` the per-layer check below says which layers.
NON_ATTENTION_KEYS = ("hybrid_override_pattern", "attn_layer_period", "full_attention_interval",
                      "linear_num_value_heads", "mamba_d_state", "ssm_state_size", "mamba_n_heads")
#: ``layer_types`` entries servesim prices: attention over a window of recent tokens, or full attention.
SLIDING_LAYER_TYPES = frozenset({"sliding_attention", "sliding_window", "sliding_window_attention", "local",
                                 "chunked_attention"})
ATTENTION_LAYER_TYPES = SLIDING_LAYER_TYPES | {"full_attention", "attention", "global"}


def _sliding(c: _Cfg, model_type: str, layers: int) -> tuple[int | None, int]:
    """(window tokens, number of sliding-window layers)."""
    window = c.int("sliding_window")
    types = c.raw("layer_types")
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise InputError("config.json:layer_types", types, "must be a list of attention-type strings")
        if len(types) != layers:
            raise InputError("config.json:layer_types", f"{len(types)} entries",
                             f"must list one type per layer ({layers})")
        other = [t for t in types if t not in ATTENTION_LAYER_TYPES]
        if other:   # e.g. Qwen3.5 / Qwen3-Next linear attention (Gated DeltaNet), Mamba or conv layers
            raise InputError("config.json:layer_types", f"'{other[0]}' ({len(other)} of {layers} layers)",
                             "servesim models full and sliding-window attention layers only")
        n = sum(t in SLIDING_LAYER_TYPES for t in types)
    elif c.bool("use_sliding_window") is False:
        return None, 0
    elif c.raw("sliding_window_pattern") is not None:        # Gemma-3: every N-th layer is global
        every = c.int("sliding_window_pattern")
        n = layers - layers // every if every else layers
    elif model_type in ("gemma2", "gpt_oss"):                 # alternate, starting with a sliding layer
        n = (layers + 1) // 2
    elif c.bool("use_sliding_window"):                        # Qwen2: layers from max_window_layers on
        n = max(0, layers - (c.int("max_window_layers", default=0) or 0))
    else:
        n = layers if window else 0                           # Mistral: every layer
    if n and not window:
        raise InputError("config.json:sliding_window", c.raw("sliding_window"),
                         "required (a positive token count) when layers use sliding-window attention")
    return (window, n) if n else (None, 0)


def _moe(c: _Cfg, model_type: str, layers: int, ffn: int | None) -> tuple[MoESpec | None, int | None]:
    """(MoE spec, width to use as ModelArch.intermediate_size)."""
    experts = next((c.int(k) for k in ("num_local_experts", "num_experts", "n_routed_experts",
                                        "num_routed_experts") if c.raw(k) is not None), None)
    if not experts or experts <= 1:
        return None, ffn
    topk = c.int("num_experts_per_tok") or c.int("experts_per_token")
    if not topk:
        raise InputError("config.json:num_experts_per_tok", c.raw("num_experts_per_tok"),
                         "required (a positive integer) for mixture-of-experts models")
    if topk > experts:
        raise InputError("config.json:num_experts_per_tok", topk, f"must not exceed the number of experts ({experts})")
    expert_ffn = c.int("moe_intermediate_size") or ffn
    if expert_ffn is None:
        raise InputError("config.json:moe_intermediate_size", None, "required for mixture-of-experts models")
    shared_ffn = c.int("shared_expert_intermediate_size")
    shared = c.int("n_shared_experts", default=None)
    if shared is None:
        shared = c.int("num_shared_experts", default=1 if shared_ffn else 0) or 0
    freq = c.int("moe_layer_freq") or c.int("decoder_sparse_step") or 1
    first = c.int("first_k_dense_replace", default=0) or 0
    only = c.raw("mlp_only_layers") or []
    if not isinstance(only, list) or not all(isinstance(i, int) and 0 <= i < layers for i in only):
        raise InputError("config.json:mlp_only_layers", only, f"must be a list of layer indices below {layers}")
    if only and (first or freq > 1):
        raise InputError("config.json:mlp_only_layers", only,
                         "cannot be combined with first_k_dense_replace or a sparse step above 1")
    dense_layers = first or len(set(only))
    if dense_layers >= layers:
        return None, ffn
    dense_ffn = None
    if dense_layers:
        if c.raw("moe_intermediate_size") is None or ffn is None:
            raise InputError("config.json:intermediate_size", ffn,
                             "dense layers need intermediate_size and moe_intermediate_size both")
        dense_ffn = ffn
    spec = MoESpec(num_experts=experts, experts_per_token=topk, expert_intermediate_size=expert_ffn,
                   num_shared_experts=shared, shared_expert_intermediate_size=shared_ffn,
                   first_dense_layers=dense_layers, layer_freq=freq, dense_intermediate_size=dense_ffn,
                   expert_bias=model_type == "gpt_oss")
    return spec, dense_ffn or expert_ffn


def _mla(c: _Cfg) -> MLASpec | None:
    if c.raw("kv_lora_rank") is None:
        return None
    why = "multi-head latent attention (kv_lora_rank is set)"
    return MLASpec(kv_lora_rank=c.int("kv_lora_rank", why), q_lora_rank=c.int("q_lora_rank") or None,
                   qk_nope_head_dim=c.int("qk_nope_head_dim", why), qk_rope_head_dim=c.int("qk_rope_head_dim", why),
                   v_head_dim=c.int("v_head_dim", why))


def model_from_hf_config(cfg: dict[str, Any], name: str = "custom", source: str = "Hugging Face config",
                         source_date: str = "") -> ModelArch:
    """Translate a Hugging Face ``config.json`` dict into a :class:`ModelArch`.

    Handles the key spellings of Llama, Mistral/Mixtral, Qwen2/2.5/3 (+MoE), DeepSeek-V2/V3 (MLA),
    gpt-oss and Gemma-2/3 (``text_config`` nesting); other model types work when they use the
    standard keys. Raises :class:`InputError` naming ``config.json:<key>`` for missing or bad keys.
    """
    if not isinstance(cfg, dict):
        raise InputError("config.json", type(cfg).__name__, "must be a JSON object")
    if isinstance(cfg.get("text_config"), dict):      # multimodal wrappers (Gemma-3, Llava, ...)
        inner = dict(cfg["text_config"])
        for k in ("tie_word_embeddings", "model_type"):
            if k not in inner and k in cfg:
                inner[k] = cfg[k]
        cfg = inner
    hybrid = next((k for k in NON_ATTENTION_KEYS if k in cfg), None)
    if hybrid is not None and "layer_types" not in cfg:
        raise InputError(f"config.json:{hybrid}", cfg[hybrid], "layers other than attention (linear attention, "
                         "state-space or convolution) are not modelled; servesim prices attention layers only")
    try:
        return _translate(_Cfg(cfg), str(cfg.get("model_type", "")).lower(), name, source, source_date)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"config.json{':' + where if where else ''}", err.get("input"), err["msg"]) from None


def _translate(c: _Cfg, model_type: str, name: str, source: str, source_date: str) -> ModelArch:
    why = "every model"
    hidden = c.int("hidden_size", why)
    layers = c.int("num_hidden_layers", why)
    heads = c.int("num_attention_heads", why)
    vocab = c.int("vocab_size", why)
    kv_heads = c.int("num_key_value_heads", default=heads)
    if kv_heads == 0:
        raise InputError("config.json:num_key_value_heads", 0, f"must be a positive integer dividing "
                         f"num_attention_heads ({heads}); leave it out for multi-head attention")
    if heads % kv_heads:
        raise InputError("config.json:num_key_value_heads", kv_heads,
                         f"must divide num_attention_heads ({heads})")
    mla = _mla(c)
    moe, ffn = _moe(c, model_type, layers, c.int("intermediate_size"))
    if ffn is None:
        c.int("intermediate_size", "dense models (the MLP width)")
    if mla is not None:
        head_dim = mla.v_head_dim
    else:
        head_dim = c.int("head_dim") or (hidden // heads if heads and hidden % heads == 0 else None)
        if not head_dim:
            raise InputError("config.json:head_dim", None,
                             f"required when hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads})")
    window, n_sliding = _sliding(c, model_type, layers)
    attn_bias = c.bool("attention_bias")
    if model_type in _QWEN2_BIAS and attn_bias is None:
        qkv_bias, o_bias = True, False
    else:
        qkv_bias = o_bias = bool(attn_bias)
    tied = c.bool("tie_word_embeddings")
    qk_norm = c.bool("use_qk_norm")
    if qk_norm is None:
        qk_norm = c.bool("qk_layernorm")
    return ModelArch(
        name=name, hidden_size=hidden, num_layers=layers, num_attention_heads=heads,
        num_kv_heads=kv_heads, head_dim=head_dim, intermediate_size=ffn, vocab_size=vocab,
        tie_word_embeddings=(model_type in _TIED_BY_DEFAULT) if tied is None else tied,
        gated_mlp=model_type not in _NO_GATE, qkv_bias=qkv_bias, o_bias=o_bias,
        mlp_bias=bool(c.bool("mlp_bias")), norm="layernorm" if model_type in _LAYERNORM else "rmsnorm",
        qk_norm=(model_type in _QK_NORM) if qk_norm is None else qk_norm,
        sliding_window=window, sliding_window_layers=n_sliding,
        max_position_embeddings=c.int("max_position_embeddings") or None,
        moe=moe, mla=mla, source=source, source_date=source_date)
