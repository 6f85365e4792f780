"""The lines of a text data file, decoded one at a time: what every reader shares.

Bytes are split on ``\\n`` only (a lone ``\\r`` is text) and each line is decoded on its own,
so that an error names its line. A UTF-8 byte order mark is dropped; a UTF-16 file, a NUL
character or (unless a fallback encoding is given) invalid UTF-8 is an error, never a skipped
row: it means the file is in another encoding, and skipping would lose every row with a
non-ASCII character. A last line without a line ending, how a truncated file ends, is read
and noted in the report as ``<role>.no_final_newline`` when it holds anything but whitespace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from jaxrec.data.report import ReadReport
from jaxrec.errors import DataError

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_lines(
    path: str | os.PathLike[str],
    role: str,
    report: ReadReport | None = None,
    *,
    fallback: str | None = None,
    keep_ending: bool = False,
) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its line ending) for each line of `path`.

    `fallback` decodes a line that is not valid UTF-8 (MovieLens's files are Latin-1);
    without it, such a line is a DataError naming the byte. `keep_ending` leaves each line's
    ending on it (a CSV reader needs it inside a quoted field that spans lines).
    """
    expected = f"{fallback} or UTF-8" if fallback else "UTF-8"
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number == 1:
                    if raw.startswith(_UTF16_BOMS):
                        message = "file is UTF-16 (it starts with a UTF-16 byte order mark); "
                        raise DataError(message + f"expected {expected}", path=str(path), line=1)
                    raw = raw.removeprefix(_UTF8_BOM)
                    if not raw:  # a file that is only a byte order mark has no lines
                        continue
                text = _decode(raw, path, number, fallback)
                if "\x00" in text:  # never in text: a UTF-16 file without a byte order mark
                    raise DataError(
                        "NUL character (is the file UTF-16?)", path=str(path), line=number
                    )
                if not text.endswith("\n"):
                    if report is not None and text.strip():
                        report.add(f"{role}.no_final_newline", example=f"{path}:{number}")
                elif not keep_ending:
                    text = text[:-2] if text.endswith("\r\n") else text[:-1]
                yield number, text
    except FileNotFoundError:
        raise DataError("file not found", path=str(path)) from None
    except OSError as err:
        raise DataError(f"cannot read file: {err.strerror}", path=str(path)) from None


def _decode(raw: bytes, path, number: int, fallback: str | None) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        if fallback:
            return raw.decode(fallback)
        message = f"invalid UTF-8 at byte {err.start + 1} of the line: {err.reason}"
        raise DataError(message, path=str(path), line=number) from None
