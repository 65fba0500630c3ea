"""Hugging Face repository ids of post-trained and re-quantised checkpoints -> catalog entries.

The rule (stated once, applied to every catalog entry): two repository names describe the same
architecture when they are equal after

1. dropping the organisation (``meta-llama/``, ``RedHatAI/``, ``neuralmagic/``, ...): re-uploads and
   quantisations keep the original repository name;
2. dropping Meta's old ``Meta-`` prefix (``Meta-Llama-3.1-8B`` was renamed ``Llama-3.1-8B``, same
   files: https://huggingface.co/meta-llama/Llama-3.1-8B, read 2026-11-22);
3. dropping the dash-separated words in :data:`VARIANT_WORDS`, which name a post-training stage or a
   weight format, not a shape: instruction tuning keeps ``config.json``'s shape keys (e.g.
   meta-llama/Llama-3.1-8B-Instruct and Qwen/Qwen2.5-7B-Instruct have the base model's
   hidden_size, layers, heads, kv heads, MLP width and vocabulary), and FP8 / INT8 / INT4 exports
   (llm-compressor, AutoAWQ, AutoGPTQ) rewrite the weights' dtype only. The precision a checkpoint
   is stored in is the scenario's ``deployment.precision``, not the architecture.

Version and date words (``v0.1``, ``v0.2``, ``2507``) are kept, since those releases can change the
shape (Mistral-7B-v0.2 dropped the sliding window); such an id is unknown until the catalog has it.
"""
from __future__ import annotations

#: Words naming a training stage or a weight format (lower case), dropped by rule 3.
VARIANT_WORDS = frozenset({
    "instruct", "chat", "it", "pt", "base", "hf",                 # post-training stage / export
    "fp8", "dynamic", "static", "w8a8", "w8a16", "w4a16",         # llm-compressor / FP8 exports
    "int8", "int4", "awq", "gptq", "bnb", "4bit", "8bit",         # AutoAWQ, AutoGPTQ, bitsandbytes
})


def variant_key(name: str) -> str:
    """``meta-llama/Llama-3.1-8B-Instruct-FP8`` -> ``llama-3.1-8b`` (rules 1-3 of the module doc)."""
    repo = name.strip().split("/")[-1].lower()
    words = [w for w in repo.replace("_", "-").split("-") if w]
    if len(words) > 1 and words[0] == "meta":
        words = words[1:]
    return "-".join(w for w in words if w not in VARIANT_WORDS)


def variant_index(hf_ids: dict[str, str]) -> dict[str, str]:
    """``{variant key: catalog name}`` from ``{catalog name: hf_id}``; a key two entries share maps to neither."""
    out: dict[str, str] = {}
    clash: set[str] = set()
    for name, hf_id in hf_ids.items():
        key = variant_key(hf_id)
        if key in out and out[key] != name:
            clash.add(key)
        out[key] = name
    return {k: v for k, v in out.items() if k not in clash}
