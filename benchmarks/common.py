"""What every benchmark here shares: alternating timing, a results table, the machine line.

Two sides are timed in turns in one process (A B B A A B ...), so a neighbour's load or a
thermal change hits both alike; the tables report medians with the min-max range.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `configs` is a folder beside the package, not installed
    sys.path.insert(0, str(ROOT))
MALLOC_DEFAULTS_FLAG = "--malloc-defaults"


def add_malloc_flag(parser) -> None:
    """By default both sides run with glibc keeping freed memory for reuse, as `jaxrec.main`
    does (jaxrec/malloc.py). The flag is acted on when this module is imported, before any
    thread pool starts."""
    parser.add_argument(
        MALLOC_DEFAULTS_FLAG,
        action="store_true",
        help="leave glibc's malloc settings as they are, for both sides",
    )


def alternate(
    sides: dict[str, Callable[[], object]], repeats: int, warmup: int = 2, pause: float = 0.2
) -> dict[str, list[float]]:
    """Seconds per call of each side, `repeats` calls each, in alternating order.

    Each call starts after `pause` seconds: the runtime that ran before (PyTorch's OpenMP
    threads, XLA's thread pool) spin-waits for a while after its work, and would otherwise
    take cores from the side timed next.
    """
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    names = list(sides)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            time.sleep(pause)
            tick = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - tick)
    return times


def table(
    rows: dict[str, list[float]],
    reference: str,
    *,
    unit: str = "ms",
    scale: float = 1e3,
    rate: tuple[str, float] | None = None,
) -> str:
    """A markdown table: median and min-max per side, and the reference's median over each.

    `rate` = (name, work per call) adds a column of work per second at the median.
    """
    ref = statistics.median(rows[reference])
    head = f"| | median {unit} | min-max {unit} |"
    head += f" {rate[0]} |" if rate else ""
    head += f" speed-up vs {reference} |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for name, ts in rows.items():
        med = statistics.median(ts)
        line = f"| {name} | {_num(med * scale)} | {_num(min(ts) * scale)}-{_num(max(ts) * scale)} |"
        if rate:
            line += f" {_num(rate[1] / med)} |"
        line += f" {ref / med:.2f}x |"
        lines.append(line)
    return "\n".join(lines)


def _num(x: float) -> str:
    """Three significant digits, without scientific notation for the sizes seen here."""
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def machine() -> str:
    """CPU model, cores, load and library versions: the context a figure needs."""
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for name in ("jax", "flax", "optax", "torch", "transformers", "tensorflow"):
        module = sys.modules.get(name)
        if module is not None:
            versions.append(f"{name} {module.__version__}")
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    memory = "glibc defaults" if MALLOC_DEFAULTS_FLAG in sys.argv else "glibc keeps freed memory"
    return f"{model}, {os.cpu_count()} cores, load {load}; {memory}; " + ", ".join(versions)


if MALLOC_DEFAULTS_FLAG not in sys.argv:  # imported before jax and torch by every benchmark
    from jaxrec import malloc

    malloc.keep_freed_memory()
