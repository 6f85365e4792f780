"""Tests run on CPU with 8 fake devices, set before jax is first imported."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def minilm_dir():
    """The packaged pretrained MiniLM-L6-H384 folder (a real HF BERT checkpoint)."""
    from jaxrec import pretrained

    return pretrained.resolve(pretrained.DEFAULT)


@pytest.fixture(scope="session")
def minilm(minilm_dir):
    """(jaxrec BertModel, BertConfig) loaded from the packaged MiniLM."""
    from jaxrec import pretrained

    model, config, _ = pretrained.load_bert(str(minilm_dir))
    return model, config
