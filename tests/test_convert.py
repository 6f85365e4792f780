"""HF checkpoint import: the rule table, and errors that name the culprit."""

import json
import shutil

import numpy as np
import pytest
import torch
from flax import nnx
from safetensors.numpy import save_file

from jaxrec import pretrained
from jaxrec.convert import hf
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import CheckpointError
from jaxrec.models.bert import BertConfig, BertModel

TINY = BertConfig(
    vocab_size=40,
    hidden_size=8,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=16,
    max_position_embeddings=12,
)


def _write_folder(path, tensors, config=TINY):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config.to_hf_dict()))
    save_file(tensors, str(path / "model.safetensors"))
    return path


def _tiny_tensors(seed=0):
    model = BertModel(TINY, rngs=nnx.Rngs(seed))
    return hf.export_tensors(model)


def test_rule_table_names_both_ways():
    assert hf.hf_to_jax_name("encoder.layer.3.attention.self.query.weight") == (
        "encoder.layer.3.attention.self.query.kernel",
        True,
    )
    assert hf.hf_to_jax_name("embeddings.word_embeddings.weight") == (
        "embeddings.word_embeddings.embedding",
        False,
    )
    assert hf.jax_to_hf_name("encoder.layer.0.output.LayerNorm.scale") == (
        "encoder.layer.0.output.LayerNorm.weight",
        False,
    )


def test_round_trip_hf_jax_hf_is_exact(minilm_dir):
    original = hf.strip_heads(hf.read_tensors(minilm_dir))
    model, _, _ = pretrained.load_bert(str(minilm_dir))
    exported = hf.export_tensors(model)
    assert set(exported) == set(original)
    for name, value in original.items():
        np.testing.assert_array_equal(exported[name], value, err_msg=name)


def test_the_exported_tensors_load_in_transformers(tmp_path):
    import transformers

    folder = _write_folder(tmp_path / "tiny", _tiny_tensors())
    loaded, info = transformers.BertModel.from_pretrained(
        str(folder), local_files_only=True, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_missing_tensor_is_named(tmp_path):
    tensors = _tiny_tensors()
    del tensors["encoder.layer.1.attention.self.key.bias"]
    model = BertModel(TINY, rngs=nnx.Rngs(1))
    with pytest.raises(
        CheckpointError, match=r"missing.*encoder\.layer\.1\.attention\.self\.key\.bias"
    ):
        hf.load_into(model, tensors, source="ckpt")


def test_extra_tensor_is_named():
    tensors = _tiny_tensors() | {
        "encoder.layer.2.output.dense.weight": np.zeros((8, 16), np.float32)
    }
    with pytest.raises(
        CheckpointError, match=r"unexpected.*encoder\.layer\.2\.output\.dense\.weight"
    ):
        hf.load_into(BertModel(TINY, rngs=nnx.Rngs(1)), tensors, source="ckpt")


def test_wrong_shape_is_named():
    tensors = _tiny_tensors()
    tensors["encoder.layer.0.intermediate.dense.weight"] = np.zeros((15, 8), np.float32)
    with pytest.raises(
        CheckpointError, match=r"intermediate\.dense\.weight: checkpoint \(15, 8\), model \(16, 8\)"
    ):
        hf.load_into(BertModel(TINY, rngs=nnx.Rngs(1)), tensors, source="ckpt")


def test_pretraining_checkpoint_prefix_and_heads_are_handled():
    tensors = {"bert." + k: v for k, v in _tiny_tensors(3).items()}
    tensors["cls.predictions.bias"] = np.zeros(40, np.float32)
    model = BertModel(TINY, rngs=nnx.Rngs(1))
    hf.load_into(model, tensors, source="ckpt")
    np.testing.assert_array_equal(model.pooler.dense.bias[...], tensors["bert.pooler.dense.bias"])


def test_pytorch_bin_is_read_with_weights_only(tmp_path):
    tensors = _tiny_tensors(4)
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY.to_hf_dict()))
    torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, folder / "pytorch_model.bin")
    model, config, _ = pretrained.load_bert(str(folder))
    assert config == TINY
    np.testing.assert_array_equal(
        model.embeddings.word_embeddings.embedding[...],
        tensors["embeddings.word_embeddings.weight"],
    )


def test_pickled_code_in_a_bin_is_refused(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY.to_hf_dict()))
    torch.save({"x": object()}, folder / "pytorch_model.bin")  # arbitrary objects need pickle
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*weights_only"):
        pretrained.load_bert(str(folder))


def test_bad_folders_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        pretrained.load_bert(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"empty/config\.json: missing"):
        pretrained.load_bert(str(tmp_path / "empty"))
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 5}))
    with pytest.raises(CheckpointError, match=r"gpt/config\.json: model_type is 'gpt2'"):
        pretrained.load_bert(str(gpt))
    (gpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"gpt/config\.json: unreadable"):
        pretrained.load_bert(str(gpt))
    _write_folder(tmp_path / "noweights", {}).joinpath("model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights found"):
        pretrained.load_bert(str(tmp_path / "noweights"))


def test_tokenizer_larger_than_the_vocabulary_is_refused(minilm_dir, tmp_path):
    shutil.copy(minilm_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(
        CheckpointError,
        match=r"tokenizer\.json: tokenizer has 30522 tokens but the model's vocab_size is 1000",
    ):
        TextTokenizer(tmp_path, vocab_size=1000)


def test_vocab_txt_tokenizer_matches_tokenizer_json(minilm_dir, tmp_path):
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, tmp_path / name)
    texts = ["Chiefs rally past the Ravens", "Café owners brace for winter"]
    a = TextTokenizer(minilm_dir)(texts, 16)
    b = TextTokenizer(tmp_path)(texts, 16)
    assert TextTokenizer(tmp_path).source.name == "vocab.txt"
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
