"""Hugging Face ids of variants of a catalog architecture resolve to that entry, and nothing else does."""
import json

import pytest

from simulator.catalog.hf_ids import variant_index, variant_key
from simulator.catalog.models import catalog_entry, list_models, load_model
from simulator.errors import InputError


@pytest.mark.parametrize("hf_id, name", [
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("meta-llama/Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8", "llama-3.1-8b"),
    ("neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8-dynamic", "llama-3.1-70b"),
    ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"),
    ("Qwen/Qwen3-8B-FP8", "qwen3-8b"),
    ("Qwen/Qwen2.5-72B-Instruct-AWQ", "qwen2.5-72b"),
    ("google/gemma-3-4b-pt", "gemma-3-4b"),
    ("mistralai/Mistral-7B-Instruct-v0.1", "mistral-7b"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
])
def test_variant_ids_load_the_catalog_architecture(hf_id, name):
    assert load_model(hf_id) == load_model(name)
    assert catalog_entry(hf_id)["hf_id"] == catalog_entry(name)["hf_id"]


@pytest.mark.parametrize("hf_id", [
    "mistralai/Mistral-7B-Instruct-v0.2",      # v0.2 changed the shape (no sliding window): a version word is kept
    "Qwen/Qwen3-30B-A3B-Instruct-2507",       # a dated release is a different checkpoint
    "meta-llama/Llama-3.1-13B-Instruct",      # no such size: the size word is kept
])
def test_ids_of_other_architectures_are_refused(hf_id):
    with pytest.raises(InputError) as e:
        load_model(hf_id)
    assert e.value.field == "model"


def test_every_catalog_hf_id_maps_back_to_its_entry():
    index = variant_index({n: catalog_entry(n)["hf_id"] for n in list_models()})
    for n in list_models():
        assert index[variant_key(catalog_entry(n)["hf_id"])] == n
        assert load_model(catalog_entry(n)["hf_id"] + "-Instruct").name == n


def test_a_key_two_entries_share_maps_to_neither():
    assert variant_index({"a": "org/X-7B", "b": "other/X-7B-Instruct", "c": "org/Y"}) == {"y": "c"}


def test_a_local_path_wins_over_the_variant_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "meta-llama" / "Llama-3.1-8B-Instruct"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 512, "num_hidden_layers": 2, "num_attention_heads": 8,
        "num_key_value_heads": 8, "intermediate_size": 1024, "vocab_size": 1000}))
    assert load_model("meta-llama/Llama-3.1-8B-Instruct").hidden_size == 512


def test_models_command_lists_hf_ids(capsys):
    from simulator.cli import main

    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["llama-3.1-8b"]["hf_id"] == "meta-llama/Llama-3.1-8B"
