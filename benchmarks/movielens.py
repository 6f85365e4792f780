"""MovieLens-100K ratings, fold by fold: jaxrec against the baselines, the oracle and IDs alone.

  .venv/bin/python benchmarks/movielens.py [--folds=u1,u2,u3,u4,u5] [DATA_DIR | sample]
      [--config.model.id_dim=64 ...]

DATA_DIR is an unzipped ml-100k folder; `sample` (the default) writes the bundled synthetic
sample's generator's folds (`scripts/make_movielens_sample.py --all-splits`) to a temporary
folder. For each fold, `configs/movielens.py` with its defaults (plus any `--config.` overrides)
trains on u{k}.base, less its validation share, and chooses its checkpoint on validation; then
its test RMSE is read on u{k}.test. Beside it, on the same test rows:
- `bias`: the damped user+item bias baseline that jaxrec prints, fitted on jaxrec's training rows;
- `MF`: biased matrix factorisation by alternating least squares (rank 5), fitted on the whole
  u{k}.base (the same settings score 0.925 on the real u1);
- `IDs only`: the same recipe without any text (`model.use_text=False`): biased MF by SGD;
- `oracle` (sample only): the best any model can expect, from the generator's oracle.json.
`cold` columns: the test rows whose movie has fewer than 5 ratings in u{k}.base. The last rows
give the mean and the standard deviation over the folds; the CPU seconds are the training's.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FEW = 5  # "cold" movies: fewer base ratings than this (as oracle.json counts them)


@functools.cache
def generator():
    """scripts/make_movielens_sample.py as a module: the sample, its bias and MF references."""
    spec = importlib.util.spec_from_file_location(
        "make_movielens_sample", ROOT / "scripts" / "make_movielens_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def read_ratings(path: Path):
    import numpy as np

    return np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2), ndmin=2)


def rmse(pred, target, mask=None) -> float:
    import numpy as np

    if mask is not None:
        pred, target = pred[mask], target[mask]
    return float(np.sqrt(np.mean((pred - target) ** 2))) if len(target) else float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train_fold(config, workdir: Path) -> tuple[dict, list[float], float]:
    """(metrics.json, test predictions in u{k}.test order, CPU seconds of the training)."""
    from jaxrec import predict, train

    tick = cpu_seconds()
    results = train.train_and_evaluate(config, workdir)
    spent = cpu_seconds() - tick
    predict.predict(workdir, None, workdir / "test.tsv")
    lines = (workdir / "test.tsv").read_text().splitlines()
    return results, [float(line.split("\t")[2]) for line in lines], spent


def bias_predictions(config, test):
    """jaxrec's printed baseline, per test row: fitted on the rows jaxrec trains on."""
    import numpy as np

    from jaxrec.data.pair_data import load_pair_data
    from jaxrec.tasks.pair import PairLog, baseline_predictions

    data = load_pair_data(config.data)
    users = {u: i + 1 for i, u in enumerate(dict.fromkeys(data.train.users))}
    items = {v: i + 1 for i, v in enumerate(dict.fromkeys(data.train.items))}

    def log(user_ids, item_ids, targets):
        n = len(targets)
        return PairLog(
            np.zeros(n, np.int32),
            np.zeros(n, np.int32),
            np.array([users.get(str(u), 0) for u in user_ids], np.int32),
            np.array([items.get(str(i), 0) for i in item_ids], np.int32),
            np.asarray(targets, np.float32).reshape(n, 1),
        )

    train_log = log(data.train.users, data.train.items, data.train.targets)
    test_log = log(test[:, 0], test[:, 1], test[:, 2])
    return baseline_predictions("rating", (1.0, 5.0), train_log, test_log)[:, 0]


def run_fold(fold: str, folder: Path, base_config, oracle: dict | None) -> dict:
    import numpy as np

    base, test = read_ratings(folder / f"{fold}.base"), read_ratings(folder / f"{fold}.test")
    target = test[:, 2].astype(np.float64)
    counts = np.bincount(base[:, 1], minlength=max(base[:, 1].max(), test[:, 1].max()) + 1)
    cold = counts[test[:, 1]] < FEW
    gen = generator()
    config = make_config(base_config, folder, fold)
    predictions = {
        "bias": bias_predictions(config, test),
        "MF": gen.matrix_factorization(base, test),
    }
    row = {"fold": fold, "test_rows": len(test), "cold_rows": int(cold.sum())}
    with tempfile.TemporaryDirectory() as tmp:
        for name, use_text in (("jaxrec", True), ("IDs only", False)):
            c = make_config(base_config, folder, fold, use_text=use_text)
            results, pred, spent = train_fold(c, Path(tmp) / name.replace(" ", "_"))
            predictions[name] = np.array(pred)
            row[f"{name} dev"] = results["dev"]["rmse"]
            row[f"{name} cpu_s"] = round(spent)
            if name == "jaxrec":
                row["bias dev"] = results["baseline"]["dev"]["rmse"]
                # The benchmark's own reading of the predictions is what the run reported.
                assert abs(rmse(predictions[name], target) - results["test"]["rmse"]) < 1e-5
    for name, pred in predictions.items():
        row[name] = rmse(pred, target)
        row[f"{name} cold"] = rmse(pred, target, cold)
    if oracle is not None:
        row["oracle"] = oracle["splits"][fold]["rmse"]
        row["oracle cold"] = oracle["splits"][fold]["rmse_few_ratings"]
    return row


def parse_config(overrides: list[str]):
    """configs/movielens.py with the command line's `--config.` overrides."""
    from absl import flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", str(ROOT / "configs" / "movielens.py"))
    flags.FLAGS([sys.argv[0], *overrides])
    return flags.FLAGS.config


def make_config(base, folder: Path, fold: str, **model):
    config = base.copy_and_resolve_references()
    config.data.path, config.data.split = str(folder), fold
    config.model.update(model)
    return config


COLUMNS = ("bias", "MF", "IDs only", "jaxrec", "oracle")

# Each choice of the defaults undone alone: (name, what it changes in the config).
ABLATIONS = (
    ("defaults", lambda c: None),
    ("+ top layer phase", lambda c: c.train.update(phases=(*c.train.phases, TOP_LAYER))),
    ("no ID L2", lambda c: c.model.update(id_l2=0.0, id_bias_l2=0.0)),
    ("ID L2 x3", lambda c: c.model.update(id_l2=0.3, id_bias_l2=0.06)),
    ("head dropout 0.1", lambda c: c.model.update(head_dropout=0.1)),
    ("MLP head", lambda c: c.model.update(head="mlp")),
    ("learning rate 1e-2", lambda c: c.train.update(phases=_scaled(c.train.phases, 1e-2))),
    ("batch 64, 5 epochs", lambda c: c.train.update(batch_size=64, phases=_epochs(c, 5))),
    ("IDs only", lambda c: c.model.update(use_text=False)),
)
TOP_LAYER = dict(trainable_layers=1, num_epochs=1, learning_rate=1e-4)


def _scaled(phases, lr: float):
    return tuple(dict(p, learning_rate=lr) for p in phases)


def _epochs(config, n: float):
    return tuple(dict(p, num_epochs=n) for p in config.train.phases)


def ablation(fold: str, folder: Path, base_config, names: list[str]) -> list[dict]:
    """Dev RMSE (never test) of the defaults and of each choice undone, on one fold."""
    rows = []
    for name, change in ABLATIONS:
        if names and name not in names:
            continue
        config = make_config(base_config, folder, fold)
        change(config)
        with tempfile.TemporaryDirectory() as tmp:
            tick = cpu_seconds()
            from jaxrec import train

            results = train.train_and_evaluate(config, Path(tmp) / "wd")
            spent = cpu_seconds() - tick
        row = {"variant": name, "dev rmse": results["dev"]["rmse"], "cpu_s": round(spent)}
        row |= {"best_step": results["best_step"], "last_step": results["last_step"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nvalidation RMSE on {fold} (the test split is not read here)")
    for r in rows:
        print(f"{r['variant']:28}{r['dev rmse']:8.4f}  best step {r['best_step']:>5}  "
              f"CPU {r['cpu_s']} s")  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    cols = [c for c in COLUMNS if c in rows[0]]
    head = "".join(f"{c:>10}" for c in cols)
    print(f"\ntest RMSE   {'rows':>6}{head}   |  cold rows{head}  | dev: bias  jaxrec | CPU s")
    for r in rows:
        test = "".join(f"{r[c]:>10.4f}" for c in cols)
        cold = "".join(f"{r[c + ' cold']:>10.4f}" for c in cols)
        print(
            f"{r['fold']:10}{r['test_rows']:>6}{test}   |  {r['cold_rows']:>9}{cold}  | "
            f"{r['bias dev']:9.4f} {r['jaxrec dev']:7.4f} | {r['jaxrec cpu_s']}"
        )
    if len(rows) > 1:
        for label, stat in (("mean", statistics.mean), ("sd", statistics.stdev)):
            test = "".join(f"{stat([r[c] for r in rows]):>10.4f}" for c in cols)
            cold = "".join(f"{stat([r[c + ' cold'] for r in rows]):>10.4f}" for c in cols)
            dev = [stat([r[k] for r in rows]) for k in ("bias dev", "jaxrec dev")]
            print(f"{label:10}{'':>6}{test}   |  {'':>9}{cold}  | {dev[0]:9.4f} {dev[1]:7.4f} |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", default="sample", help="an ml-100k folder, or sample")
    parser.add_argument("--folds", default="u1", help="comma-separated: u1..u5, ua, ub")
    parser.add_argument("--out", type=Path, help="also write the table as JSON here")
    parser.add_argument(
        "--ablation",
        nargs="?",
        const="",
        help="instead: validation RMSE of each choice undone, on the first fold "
        "(comma-separated names from ABLATIONS; empty: all)",
    )
    args, overrides = parser.parse_known_args(argv[1:])
    folds = args.folds.split(",")
    config = parse_config(overrides)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data == "sample":
            gen, folder = generator(), Path(tmp)
            gen.write_sample(gen.generate(), folder, [*gen.FOLDS, *gen.ALLBUT])
            oracle = json.loads((folder / "oracle.json").read_text())
        else:
            folder, oracle = Path(args.data), None
        if args.ablation is not None:
            names = [n for n in args.ablation.split(",") if n]
            rows = ablation(folds[0], folder, config, names)
            if args.out:
                args.out.write_text(json.dumps(rows, indent=2) + "\n")
            return
        rows = []
        for fold in folds:
            rows.append(run_fold(fold, folder, config, oracle))
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv)
