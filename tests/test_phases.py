"""Training in phases: each trains its own scope with its own optimizer, from the best so far."""

import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from safetensors.numpy import load_file

from configs import ecommerce, movielens
from jaxrec import checkpointing, phases, train
from jaxrec.errors import ConfigError
from jaxrec.params import path_name
from jaxrec.preemption import Preempted
from jaxrec.tasks.pair import PairTask


def _config(bert_dir, *phase_list, **train_overrides):
    """The shop's click task on the tiny BERT; 395 steps of 16 make an epoch."""
    c = ecommerce.get_config("tiny")
    c.model.init_from = str(bert_dir)
    c.model.dropout = 0.0
    c.data.user_len, c.data.item_len = 16, 24
    c.train.update(phases=phase_list, eval_every=2, save_every=2, keep_checkpoints=20)
    c.train.update(train_overrides)
    return c


def _phase(layers, steps, lr):
    return {"trainable_layers": layers, "num_epochs": steps / 395, "learning_rate": lr}


def _params(workdir, step):
    """A checkpoint's parameters by dotted name (bert.encoder.layer.1.attention...)."""
    mngr = checkpointing.manager(workdir, read_only=True)
    restored = mngr.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore()))
    flat = jax.tree_util.tree_flatten_with_path(restored["params"])[0]
    return {path_name(path).removesuffix(".value"): np.asarray(x) for path, x in flat}


def _encoder_layer(params, i):
    return {k: v for k, v in params.items() if k.startswith(f"bert.encoder.layer.{i}.")}


def _outside_encoder(params):
    return {k: v for k, v in params.items() if not k.startswith("bert.")}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_plan_counts_epochs_in_steps_and_finds_each_steps_phase():
    c = movielens.get_config()
    c.train.batch_size = 100
    c.train.phases = (
        _phase(0, 1, 1e-3) | {"num_epochs": 2.5},
        _phase(1, 1, 1e-4) | {"num_epochs": 1},
    )
    plan = phases.plan(c.train, c.model, samples_per_epoch=1050)  # 10 steps an epoch
    assert [(p.first_step, p.last_step) for p in plan] == [(1, 25), (26, 35)]
    assert [p.trainable_layers for p in plan] == [0, 1] and plan[1].learning_rate == 1e-4
    assert [phases.phase_at(plan, s).index for s in (0, 1, 25, 26, 35)] == [0, 0, 0, 1, 1]
    c.train.phases = ()  # one phase: model.trainable_layers at train.learning_rate
    (only,) = phases.plan(c.train, c.model, samples_per_epoch=1050)
    assert (only.trainable_layers, only.first_step, only.last_step) == (1, 1, c.train.num_steps)


def test_first_phase_trains_only_outside_the_encoder_and_the_next_starts_from_its_best(
    tiny_bert_dir, tmp_path, monkeypatch
):
    """Phase 1 (encoder frozen) stops early at step 4 with its best at step 2; phase 2 (the top
    layer, learning rate 0 so nothing moves) starts at its own first step, from step 2."""
    dev_auc = iter([0.9, 0.5, 0.4, 0.1, 0.1])
    monkeypatch.setattr(
        PairTask, "evaluate", lambda self, states: {"auc": next(dev_auc), "log_loss": 1.0}
    )
    config = _config(tiny_bert_dir, _phase(0, 8, 1e-2), _phase(1, 4, 0.0), patience=2)
    results = train.train_and_evaluate(config, tmp_path / "wd")
    assert (results["best_step"], results["last_step"]) == (2, 12)
    wd = tmp_path / "wd"
    assert sorted(checkpointing.manager(wd, read_only=True).all_steps()) == [2, 4, 6, 10, 12]
    best, later = _params(wd, 2), _params(wd, 6)
    pretrained = load_file(str(tiny_bert_dir / "model.safetensors"))
    query = best["bert.encoder.layer.1.attention.self.query.kernel"]
    np.testing.assert_array_equal(
        query.T, pretrained["encoder.layer.1.attention.self.query.weight"]
    )
    assert _same(_encoder_layer(later, 1), _encoder_layer(best, 1))  # phase 1 froze the encoder
    assert not _same(_outside_encoder(best), _outside_encoder(later))  # ... and trained the head
    for step in (10, 12):  # phase 2 began from phase 1's best, not its last
        assert _same(_params(wd, step), best)


class _StopAfter:
    """A SIGTERM flag that goes up after `n` steps of the run (counted across phases)."""

    calls = 0

    def __init__(self, install: bool) -> None:
        pass

    def __bool__(self) -> bool:
        _StopAfter.calls += 1
        return _StopAfter.calls == _StopAfter.stop_at

    def restore(self) -> None:
        pass


@pytest.mark.parametrize("stop_at", [3, 6])  # in phase 1; in phase 2
def test_a_run_stopped_in_either_phase_resumes_to_the_uninterrupted_result(
    tiny_bert_dir, tmp_path, monkeypatch, stop_at
):
    config = _config(tiny_bert_dir, _phase(0, 4, 1e-2), _phase(1, 4, 1e-3))
    straight = train.train_and_evaluate(config, tmp_path / "straight")

    monkeypatch.setattr(train, "SignalFlag", _StopAfter)
    _StopAfter.calls, _StopAfter.stop_at = 0, stop_at
    with pytest.raises(Preempted):
        train.train_and_evaluate(config, tmp_path / "resumed")
    monkeypatch.undo()
    resumed = train.train_and_evaluate(config, tmp_path / "resumed")

    for key in ("dev", "test", "best_step", "last_step"):
        assert resumed[key] == straight[key]
    a, b = _params(tmp_path / "straight", 8), _params(tmp_path / "resumed", 8)
    assert _same(a, b)
    # Phase 2 trained the top layer only.
    pretrained = _params(tmp_path / "straight", 4)
    assert _same(_encoder_layer(a, 0), _encoder_layer(pretrained, 0))
    assert not _same(_encoder_layer(a, 1), _encoder_layer(pretrained, 1))
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["dev"] == straight["dev"]


@pytest.mark.parametrize(
    "phase_list,message",
    [
        (({"trainable_layers": 0, "num_epochs": 1},), r"train.phases\[0\] .*exactly"),
        ((_phase(3, 4, 1e-3),), r"train.phases\[0\].trainable_layers is 3"),
        ((_phase(0, 4, 1e-3), _phase(1, 0, 1e-3)), r"train.phases\[1\].num_epochs is 0"),
        ((_phase(0, 4, -1.0),), r"train.phases\[0\].learning_rate is -1"),
    ],
)
def test_a_bad_phase_is_named(tiny_bert_dir, tmp_path, phase_list, message):
    with pytest.raises(ConfigError, match=message):
        train.train_and_evaluate(_config(tiny_bert_dir, *phase_list), tmp_path / "wd")


def test_news_refuses_phases(tiny_bert_dir, tmp_path):
    from configs import news

    c = news.get_config("tiny")
    c.model.init_from = str(tiny_bert_dir)
    c.train.phases = (_phase(0, 4, 1e-3),)
    with pytest.raises(ConfigError, match="train.phases"):
        train.train_and_evaluate(c, tmp_path / "wd")
