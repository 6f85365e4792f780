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


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_dir):
    """A randomly initialised 2-layer BERT (hidden 32) with MiniLM's tokenizer, as an HF folder."""
    import json
    import shutil

    from flax import nnx
    from safetensors.numpy import save_file

    from jaxrec.convert import hf
    from jaxrec.models.bert import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_bert")
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    (folder / "config.json").write_text(json.dumps(config.to_hf_dict()))
    save_file(
        hf.export_tensors(BertModel(config, rngs=nnx.Rngs(0))), str(folder / "model.safetensors")
    )
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


TOPICS = {
    "sports": "team wins game season coach player score match league title playoff".split(),
    "finance": "stocks market fed rates earnings investors bank shares dollar inflation".split(),
    "health": "doctors study disease vaccine patients hospital diet sleep heart cancer".split(),
    "foodanddrink": "recipe dinner chicken pasta bake chef restaurant soup dessert wine".split(),
}


def write_tiny_mind(root, *, seed=0, impressions=(("train", 160), ("dev", 48)), news_per_split=80):
    """A small MIND-format folder: users prefer one topic and click within it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    for split, n_imp in impressions:
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        news = []
        for i in range(news_per_split):
            topic = names[i % len(names)]
            title = " ".join(rng.choice(TOPICS[topic], 6)).capitalize()
            news.append(
                (
                    f"N{split[0]}{i}",
                    topic,
                    topic + "_sub",
                    title,
                    f"About {title.lower()}.",
                    f"https://example.com/{i}",
                    "[]",
                    "[]",
                )
            )
        with open(folder / "news.tsv", "w", encoding="utf-8") as f:
            f.writelines("\t".join(row) + "\n" for row in news)
        with open(folder / "behaviors.tsv", "w", encoding="utf-8") as f:
            for j in range(n_imp):
                fav = names[j % len(names)]
                liked = [n[0] for n in news if n[1] == fav]
                other = [n[0] for n in news if n[1] != fav]
                history = " ".join(rng.choice(liked, int(rng.integers(0, 6)), replace=False))
                cands = [f"{c}-1" for c in rng.choice(liked, 1)]
                cands += [
                    f"{c}-0" for c in rng.choice(other, int(rng.integers(2, 8)), replace=False)
                ]
                rng.shuffle(cands)
                f.write(
                    f"{j + 1}\tU{j % 24}\t11/{11 + j % 3}/2019 {1 + j % 12}:05:07 PM\t"
                    f"{history}\t{' '.join(cands)}\n"
                )
    return root


@pytest.fixture(scope="session")
def tiny_mind_dir(tmp_path_factory):
    return write_tiny_mind(tmp_path_factory.mktemp("tiny_mind"))
