"""Export to PyTorch: transformers loads the encoder, and the torch recommender's scores
match jaxrec's on the same dev data."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from configs import news as news_config
from jaxrec import export, train
from jaxrec.data import mind
from jaxrec.data.news_data import load_split
from jaxrec.errors import CheckpointError, ConfigError
from jaxrec.tasks import news_inference as infer
from jaxrec.torch_serving import NewsRecommender
from jaxrec.trained import load_trained

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=[("attention", "attention"), ("cls", "mhsa")])
def trained(request, tiny_mind_dir, tiny_bert_dir, tmp_path_factory):
    pooling, user_encoder = request.param
    c = news_config.get_config("tiny")
    c.data.dir, c.model.init_from = str(tiny_mind_dir), str(tiny_bert_dir)
    c.model.pooling, c.model.user_encoder = pooling, user_encoder
    c.train.update(num_steps=2, eval_every=2, warmup_steps=0)
    workdir = tmp_path_factory.mktemp("trained")
    train.train_and_evaluate(c, workdir)
    return workdir


def _jax_scores(workdir):
    trained = load_trained(workdir)
    tok, states = trained.task.env.tokenizer, trained.states
    dev = load_split(
        trained.config.data, "dev", tok, cache_dir=workdir / "cache", report=mind.ReadReport()
    )
    fns = infer.NewsInference(trained.graphdef)
    return dev, infer.score_split(fns, states, dev.table, dev.log, 64), (fns, states)


def _torch_scores(model, dev, with_vectors=False):
    tokens = {k: torch.from_numpy(v).long() for k, v in dev.table.tokens.items()}
    news = model.encode_news(**tokens)
    history = torch.from_numpy(dev.log.history).long()
    users = model.encode_users(news[history], torch.from_numpy(dev.log.history_mask))
    scores = [
        (news[torch.from_numpy(c).long()] @ u).float().numpy()
        for u, c in zip(users, dev.log.candidates, strict=True)
    ]
    return (scores, news.float(), users.float()) if with_vectors else scores


def test_exported_recommender_scores_match_jax(trained, tmp_path):
    out = tmp_path / "out"
    export.export(trained, out)
    assert not [p for p in out.iterdir() if p.suffix in (".bin", ".pt", ".pkl", ".pth")]
    dev, jax_scores, (fns, states) = _jax_scores(trained)
    model = NewsRecommender.from_pretrained(out)
    torch_scores = _torch_scores(model, dev)
    diff = max(np.abs(a - b).max() for a, b in zip(jax_scores, torch_scores, strict=True))
    print(f"float32 export: max |score diff| {diff:.3g}")
    assert diff <= 1e-4, diff

    # The encoder alone, as transformers loads it: hidden states on a padded batch.
    bert, info = transformers.AutoModel.from_pretrained(
        str(out), local_files_only=True, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    tokens = {k: v[:16] for k, v in dev.table.tokens.items()}
    assert (tokens["attention_mask"] == 0).any()  # padded
    from flax import nnx

    jax_model = nnx.merge(fns.graphdef, *states)
    mask = tokens["attention_mask"].astype(bool)
    jax_hidden = np.asarray(
        jax_model.bert.hidden_states(
            tokens["input_ids"], tokens["attention_mask"], tokens["token_type_ids"]
        )
    )
    with torch.no_grad():
        pt_hidden = bert(**{k: torch.from_numpy(v).long() for k, v in tokens.items()})
    diff = np.abs(jax_hidden - pt_hidden.last_hidden_state.numpy())[mask].max()
    print(f"float32 export: max |hidden diff| {diff:.3g}")
    assert diff <= 1e-4, diff


def test_bfloat16_export_keeps_the_ranking(trained, tmp_path):
    out = tmp_path / "bf16"
    export.export(trained, out, dtype="bfloat16")
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    model = NewsRecommender.from_pretrained(out)
    assert next(model.bert.parameters()).dtype == torch.bfloat16
    dev, jax_scores, _ = _jax_scores(trained)
    bf16, news, users = _torch_scores(model, dev, with_vectors=True)
    # Stated tolerance: bfloat16 keeps about 3 significant digits, so each score (a dot
    # product) stays within 2% of the largest |user| * |news| it could reach.
    scale = float(news.norm(dim=-1).max() * users.norm(dim=-1).max())
    diff = max(np.abs(a - b).max() for a, b in zip(jax_scores, bf16, strict=True))
    print(f"bfloat16 export: max |score diff| {diff:.4g} = {diff / scale:.2%} of {scale:.4g}")
    assert diff <= 0.02 * scale, (diff, scale)


def test_bad_requests_are_refused(trained, tmp_path):
    with pytest.raises(CheckpointError, match="not a training workdir"):
        export.export(tmp_path / "nothing", tmp_path / "o1")
    with pytest.raises(CheckpointError, match="no checkpoint for step 7"):
        export.export(trained, tmp_path / "o2", step="7")
    with pytest.raises(ConfigError, match="--step"):
        export.export(trained, tmp_path / "o3", step="first")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        export.export(trained, busy)
    with pytest.raises(ConfigError, match="only an earlier export, and .*busy holds keep.txt"):
        export.export(trained, busy, overwrite=True)
    assert (busy / "keep.txt").read_text() == "mine"
    earlier = tmp_path / "earlier"
    export.export(trained, earlier)
    with pytest.raises(ConfigError, match="not empty"):
        export.export(trained, earlier)
    assert export.export(trained, earlier, step="latest", overwrite=True) == 2
    assert json.loads((earlier / "jaxrec_heads.json").read_text())["checkpoint_step"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_readme_pytorch_example_runs_without_jax(trained, tmp_path):
    out = tmp_path / "exported"
    export.export(trained, out)
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- torch-example -->\n```python\n(.*?)```", readme, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15  # short enough to read at a glance
    check = (
        "\nimport sys\n"
        "assert 'jax' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "print('TOKENS', tokens['input_ids'].tolist())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code + check],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = re.search(r"tensor\(\[\[(.*?)\]\]", proc.stdout, re.S).group(1).split(",")
    assert len(scores) == 3 and all(np.isfinite(float(s)) for s in scores)
    # transformers' tokenizer from the export gives jaxrec's token ids.
    from jaxrec.data.tokenize import TextTokenizer

    titles, abstracts = (
        eval(re.search(rf"{k} = (\[.*?\])", code).group(1)) for k in ("titles", "abstracts")
    )
    title_len = json.loads((out / "jaxrec_heads.json").read_text())["title_len"]
    ours = TextTokenizer(out)(titles, title_len, abstracts)["input_ids"].tolist()
    assert f"TOKENS {ours}" in proc.stdout


@pytest.mark.parametrize(
    "task,architecture,head,use_ids,use_text",
    [
        ("multilabel", "two_tower", "mlp", True, True),
        ("click", "two_tower", "dot", True, True),
        ("rating", "cross", "mlp", False, True),
        ("rating", "two_tower", "dot", True, False),
    ],
)
def test_exported_pair_recommender_predicts_what_jaxrec_predicts(
    tiny_bert_dir, tmp_path, task, architecture, head, use_ids, use_text
):
    from configs import ecommerce
    from jaxrec import predict, torch_serving
    from jaxrec.data.pair_data import load_pair_data

    c = ecommerce.get_config(task)
    c.model.init_from = str(tiny_bert_dir)
    c.model.update(architecture=architecture, head=head, use_ids=use_ids, use_text=use_text)
    c.data.user_len, c.data.item_len = 16, 24
    c.train.update(num_steps=2, eval_every=2, batch_size=16, learning_rate=1e-2)
    train.train_and_evaluate(c, tmp_path / "wd")
    export.export(tmp_path / "wd", tmp_path / "out")
    predict.predict(tmp_path / "wd", None, tmp_path / "pred.tsv")

    model = torch_serving.load(tmp_path / "out")
    assert isinstance(model, torch_serving.PairRecommender)
    data = load_pair_data(c.data)
    n = 64
    users, items = list(data.test.users[:n]), list(data.test.items[:n])
    user_texts, item_texts = [data.user_text[u] for u in users], [data.item_text[i] for i in items]
    got = model.predict(user_texts, item_texts, users, items).numpy()
    lines = (tmp_path / "pred.tsv").read_text().splitlines()[:n]
    want = [[float(v.rsplit(":", 1)[-1]) for v in line.split("\t")[2].split(",")] for line in lines]
    np.testing.assert_allclose(got, np.array(want), atol=1e-4)  # predict writes 6 decimals

    # Before the sigmoid, where nothing saturates: the same outputs as jaxrec's model.
    trained = load_trained(tmp_path / "wd")
    tok = trained.task.env.tokenizer
    vocab = trained.task.vocab.rows()
    ids = np.arange(n, dtype=np.int32)
    batch = {
        "users": tok(user_texts, c.data.user_len),
        "items": tok(item_texts, c.data.item_len),
        "user_index": ids,
        "item_index": ids,
        "user_id": np.array([vocab["users"].get(u, 0) for u in users], np.int32),
        "item_id": np.array([vocab["items"].get(i, 0) for i in items], np.int32),
    }
    jax_logits = np.asarray(trained.model(batch))
    torch_logits = model.logits(
        model.tokenize(user_texts, "user"),
        model.tokenize(item_texts, "item"),
        model.id_rows(users, "user"),
        model.id_rows(items, "item"),
    ).numpy()
    np.testing.assert_allclose(torch_logits, jax_logits, atol=1e-4)
    assert np.ptp(jax_logits) > 1e-2  # the pairs are told apart: not a constant compared
