"""Draws `news_curves.py` results: dev AUC against CPU minutes, one panel per data set.

Run: python benchmarks/plot_curves.py --out=benchmarks/news_curves.png \\
         "MIND-like 5%=curves_mind.jsonl" "bundled sample=curves_sample.jsonl"
Each argument is TITLE=FILE; a run's line is its evaluations, at the CPU time spent outside
evaluation. Reference AUCs (the generator's oracle, interest-only, popularity) are drawn from
the data folder's stats.json when it has one. Prints a markdown table of the same points.
Needs matplotlib (`pip install -e ".[dev]"`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CHECKPOINTS_MIN = (2, 4, 6, 8, 10, 12)  # CPU minutes at which the table reads each curve


def load(path: str, names: list[str] | None = None) -> list[dict]:
    runs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if names:
        runs = [r for r in runs if r["name"] in names]
    return runs


def auc_at(run: dict, minutes: float) -> float | None:
    """The last dev AUC measured by `minutes` of CPU time (None before the first)."""
    seen = [p["auc"] for p in run["points"] if p["cpu_s"] / 60 <= minutes]
    return seen[-1] if seen else None


def references(run: dict) -> dict[str, float]:
    stats = Path(run["data"]) / "stats.json"
    if not stats.exists():
        return {}
    auc = json.loads(stats.read_text())["dev"]["auc"]
    return {"oracle": auc["oracle"], "interest only": auc["interest"]}


def table(title: str, runs: list[dict]) -> str:
    head = "| " + title + " | " + " | ".join(f"{m} min" for m in CHECKPOINTS_MIN)
    head += " | last: step, CPU min, AUC |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for run in runs:
        cells = [auc_at(run, m) for m in CHECKPOINTS_MIN]
        last = run["points"][-1]
        lines.append(
            f"| {run['name']} | "
            + " | ".join("" if c is None else f"{c:.3f}" for c in cells)
            + f" | {last['step']}, {last['cpu_s'] / 60:.1f}, {last['auc']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("panels", nargs="+", help="TITLE=FILE[:name,name,...]")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.panels), figsize=(6.5 * len(args.panels), 4.8))
    axes = [axes] if len(args.panels) == 1 else list(axes)
    for ax, panel in zip(axes, args.panels, strict=True):
        title, _, spec = panel.partition("=")
        path, _, names = spec.partition(":")
        runs = load(path, names.split(",") if names else None)
        for run in runs:
            xs = [pt["cpu_s"] / 60 for pt in run["points"]]
            ax.plot(xs, [pt["auc"] for pt in run["points"]], marker="o", ms=3, label=run["name"])
        if runs:
            ax.axhline(runs[0]["baseline"]["auc"], color="gray", ls=":", lw=1, label="popularity")
            for (name, value), style in zip(
                references(runs[0]).items(), ("--", "-."), strict=False
            ):
                ax.axhline(value, color="black", ls=style, lw=1, label=name)
        ax.set_title(title)
        ax.set_xlabel("CPU minutes (2 cores; evaluation excluded)")
        ax.set_ylabel("dev AUC")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        print(table(title, runs) + "\n")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
