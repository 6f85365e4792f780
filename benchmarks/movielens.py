"""MovieLens-100K quality: train configs/movielens.py on split u1 and score u1.test.

  .venv/bin/python benchmarks/movielens.py /path/to/ml-100k [--config.train.num_steps=N ...]
  .venv/bin/python benchmarks/movielens.py sample      # the bundled synthetic sample

Prints the test RMSE and MAE beside the user+item bias baseline on the same split. The
target on the real data is RMSE <= 0.90 (bias baseline about 0.96; GC-MC 0.905; GLocal-K
0.889). Extra arguments are config overrides, as for jaxrec.main.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    from absl import flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", str(ROOT / "configs" / "movielens.py"))
    flags.FLAGS([argv[0], *argv[2:]])
    config = flags.FLAGS.config
    config.data.path = "" if argv[1] == "sample" else argv[1]
    config.data.split = "u1"

    from jaxrec import train

    with tempfile.TemporaryDirectory() as workdir:
        results = train.train_and_evaluate(config, workdir)
    test, base = results["test"], results["baseline"]["test"]
    print(json.dumps({"data": argv[1], "jaxrec": test, "bias_baseline": base}, indent=2))
    print(f"test RMSE {test['rmse']:.4f} (baseline {base['rmse']:.4f}) on ML-100K u1")


if __name__ == "__main__":
    main(sys.argv)
