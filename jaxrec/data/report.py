"""ReadReport: what readers skipped or defaulted, counted by reason (shared by every reader)."""

from __future__ import annotations

import collections


class ReadReport:
    """Counts of rows and IDs that were skipped or defaulted while reading, by reason.

    Reasons are dotted names such as ``news.bad_row``, ``behaviors.bad_row``,
    ``news.duplicate_id``, ``behaviors.duplicate_id``, ``history.unknown_news``,
    ``candidates.unknown_news`` and ``news.added_empty``; other readers use their own
    prefixes. The first message seen for each reason is kept so that a log line can show
    what a skipped row looked like.
    """

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}

    def add(self, reason: str, n: int = 1, *, example: str | None = None) -> None:
        self.counts[reason] += n
        if example is not None:
            self.examples.setdefault(reason, example)

    def merge(self, other: ReadReport) -> ReadReport:
        """Adds ``other``'s counts into this report and returns this report."""
        self.counts.update(other.counts)
        for reason, example in other.examples.items():
            self.examples.setdefault(reason, example)
        return self

    def as_dict(self) -> dict[str, int]:
        return {reason: n for reason, n in sorted(self.counts.items()) if n}

    def __repr__(self) -> str:
        return f"ReadReport({self.as_dict()})"
