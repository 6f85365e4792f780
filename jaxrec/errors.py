"""The error types jaxrec raises for bad input: each names its culprit."""

from __future__ import annotations


class DataError(ValueError):
    """A data file that cannot be read as its format says: names file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path, self.line, self.field = path, line, field
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class ConfigError(ValueError):
    """A configuration value that is unknown, of the wrong type, or impossible."""


class CheckpointError(ValueError):
    """A checkpoint or weights folder that is missing, unreadable or does not fit the model."""


def excerpt(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters: a huge bad field stays one short line."""
    text = repr(value)
    return (
        text if len(text) <= limit else f"{text[: limit - 15]}...{text[-10:]} ({len(text)} chars)"
    )
