"""ReadReport: what readers read, skipped or defaulted, counted by file role and reason."""

from __future__ import annotations

import collections
import logging

from jaxrec.errors import ConfigError, DataError

MAX_SKIPPED_SHARE_KEY = "data.max_skipped_share"


class ReadReport:
    """Counts of rows read, and of rows and IDs skipped or defaulted while reading, by reason.

    Reasons are dotted names ``<role>.<what>`` such as ``news.bad_row``, ``behaviors.bad_row``,
    ``news.duplicate_id``, ``behaviors.duplicate_id``, ``history.unknown_news``,
    ``candidates.unknown_news`` and ``news.added_empty``; other readers use their own roles
    (``users``, ``items``, ``train``, ``test``, ``ratings``). A reason recorded with
    :meth:`skip` drops a row; one recorded with :meth:`add` keeps the row but defaults
    something in it, or notes something about the file (``behaviors.no_final_newline``). The
    first message seen for each reason is kept so that a log line can
    show what a skipped row looked like.
    """

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}
        self.skip_reasons: set[str] = set()
        self.rows: collections.Counter[str] = collections.Counter()  # role -> rows read
        self.files: dict[str, list[str]] = {}  # role -> the files read under it

    def add(self, reason: str, n: int = 1, *, example: str | None = None) -> None:
        """Counts ``n`` things defaulted (or noticed) under ``reason``; no row is dropped."""
        if n == 0:  # nothing happened: the report stays empty, so "no counts" means clean data
            return
        self.counts[reason] += n
        if example is not None:
            self.examples.setdefault(reason, example)

    def skip(self, reason: str, n: int = 1, *, example: str | None = None) -> None:
        """Counts ``n`` rows dropped under ``reason``; its role is the part before the dot."""
        if n == 0:
            return
        self.skip_reasons.add(reason)
        self.add(reason, n, example=example)

    def read(self, role: str, n: int, path: str | None = None) -> None:
        """Counts ``n`` rows (kept or skipped) read from a file of ``role``."""
        self.rows[role] += n
        if path is not None and path not in self.files.setdefault(role, []):
            self.files[role].append(path)

    def merge(self, other: ReadReport) -> ReadReport:
        """Adds ``other``'s counts into this report and returns this report."""
        self.counts.update(other.counts)
        for reason, example in other.examples.items():
            self.examples.setdefault(reason, example)
        self.skip_reasons |= other.skip_reasons
        self.rows.update(other.rows)
        for role, paths in other.files.items():
            for path in paths:
                self.read(role, 0, path)
        return self

    def skipped(self, role: str) -> int:
        """How many rows of ``role`` were dropped, over all reasons."""
        return sum(n for r, n in self.counts.items() if r in self.skip_reasons and _role(r) == role)

    def check_share(self, max_share: float, *, key: str = MAX_SKIPPED_SHARE_KEY) -> None:
        """Raises DataError if more than ``max_share`` of any role's rows were skipped.

        Skipping is for the odd damaged row; when a large part of a file is dropped, the
        file is more likely in another format or badly damaged, and a model trained on what
        is left would quietly be a different experiment.
        """
        if isinstance(max_share, bool) or not isinstance(max_share, int | float):
            raise ConfigError(f"{key} must be a number between 0 and 1, got {max_share!r}")
        if not 0.0 <= max_share <= 1.0:
            raise ConfigError(f"{key} must be between 0 and 1, got {max_share}")
        roles = dict.fromkeys([*self.rows, *(_role(r) for r in self.skip_reasons)])
        for role in roles:
            skipped, total = self.skipped(role), self.rows[role]
            if skipped and (total == 0 or skipped / total > max_share):
                reasons = ", ".join(
                    f"{r}: {self.counts[r]}"
                    for r in sorted(self.skip_reasons)
                    if _role(r) == role and self.counts[r]
                )
                first = next(
                    (self.examples[r] for r in sorted(self.skip_reasons) if r in self.examples
                     and _role(r) == role),
                    None,
                )  # fmt: skip
                share = skipped / total if total else 1.0
                raise DataError(
                    f"skipped {skipped} of {total} {role} rows ({share:.1%}, more than "
                    f"{key}={max_share:g}): {reasons}" + (f"; first: {first}" if first else ""),
                    path=", ".join(self.files.get(role, [])) or None,
                )

    def log(self, logger: logging.Logger) -> None:
        """One warning per reason: how many, and the first example."""
        for reason, n in sorted(self.counts.items()):
            if not n:
                continue
            what = "rows skipped" if reason in self.skip_reasons else "(rows kept)"
            example = self.examples.get(reason)
            logger.warning("%s: %d %s%s", reason, n, what, f", e.g. {example}" if example else "")

    def as_dict(self) -> dict[str, int]:
        return {reason: n for reason, n in sorted(self.counts.items()) if n}

    def rows_dict(self) -> dict[str, int]:
        """Rows read per file role, for metrics.json beside :meth:`as_dict`."""
        return dict(sorted(self.rows.items()))

    def __repr__(self) -> str:
        return f"ReadReport({self.as_dict()})"


def _role(reason: str) -> str:
    return reason.partition(".")[0]
