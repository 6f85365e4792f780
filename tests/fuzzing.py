"""What the property-based reader tests share: Hypothesis profiles, scratch files, strategies.

Importing this module selects the profile named by the environment variable
HYPOTHESIS_PROFILE:

  default   what `make test` runs: derandomized, so every run (and CI) tries the same cases,
            and no example database is written into the repository
  nightly   20 times the examples, from fresh random seeds: for a scheduled job

Each test asks for ``examples(n)``: n cases under the default profile, scaled under nightly.
Inputs are written to a fresh temporary folder inside each example (``scratch()``): pytest's
``tmp_path`` is created once per test, not once per generated case.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

_COMMON = {
    "deadline": None,  # file writes on a busy machine make timings noisy
    "suppress_health_check": [HealthCheck.too_slow],
    # The explain phase reruns a failure hundreds of times to annotate lines: minutes here.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
}
settings.register_profile("default", derandomize=True, database=None, **_COMMON)
settings.register_profile("nightly", derandomize=False, database=None, **_COMMON)
_SCALES = {"default": 1, "nightly": 20}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
if PROFILE not in _SCALES:
    raise ValueError(f"HYPOTHESIS_PROFILE must be one of {list(_SCALES)}, got {PROFILE!r}")
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """How many cases a test runs: ``n`` by default, more in the nightly profile."""
    return n * _SCALES[PROFILE]


# Thousands of cases each make and delete a folder: in memory that costs ~0.2 ms, on a disk
# ~3 ms, most of a case's time.
_SCRATCH_ROOT = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A fresh, empty folder for one generated case."""
    with tempfile.TemporaryDirectory(prefix="jaxrec-fuzz-", dir=_SCRATCH_ROOT) as folder:
        yield Path(folder)


def file_bytes(
    lines: Sequence[bytes], *, newline: bytes = b"\n", bom: bool = False, final: bool = True
) -> bytes:
    """``lines`` joined by ``newline``, with a UTF-8 byte order mark and a final newline or not.

    A last line that is empty keeps its newline: without one it would not be a line at all.
    """
    body = newline.join(lines)
    if lines and (final or not lines[-1]):
        body += newline
    return (b"\xef\xbb\xbf" if bom else b"") + body


# Byte sequences that are not UTF-8: a lone continuation byte, a truncated sequence, an
# overlong encoding, an encoded surrogate, bytes UTF-8 never uses.
INVALID_UTF8 = (b"\x80", b"\xc3", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff", b"\xfe")

# Whitespace that str.split() splits on beside the plain space; none of it ends a line.
WHITESPACE = (" ", "  ", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "\r")

line_endings = st.sampled_from([b"\n", b"\r\n"])

# Characters that stress readers, drawn from a fixed list (generating from all of Unicode costs
# most of a case's time): ASCII letters, digits and punctuation, the separators the formats use
# (tab, comma, pipe, dash, quote), Latin-1 and CJK letters, an astral emoji, a combining mark,
# a BOM character, a right-to-left mark, and the control and space characters of WHITESPACE.
ALPHABET = (
    "aZ09_.,;:|-'\"\\/{}[]()#%&*+=<>?!@$^`~ \t\r\n"
    "\x0b\x0c\x1c\x1f\x7f\x85\xa0\xadéüßÆñ¡¿°±µ"
    "東京語ひら한글Ωжשע\u0301\u200b\u200f\u2028\u3000\ufeff\ufffd😀𝄞"
)
WORD_ALPHABET = "".join(c for c in ALPHABET if not c.isspace())


def text(*, exclude: str = "", min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Text from ALPHABET without the characters in ``exclude``."""
    chars = [c for c in ALPHABET if c not in exclude]
    return st.text(st.sampled_from(chars), min_size=min_size, max_size=max_size)


def _pool(alphabet: str, size: int, max_len: int, seed: int) -> tuple[str, ...]:
    rng = random.Random(seed)
    words = {"".join(rng.choices(alphabet, k=rng.randint(1, max_len))) for _ in range(size)}
    return tuple(sorted(words, key=lambda w: (len(w), w)))  # simplest first, for shrinking


# Prebuilt strings drawn with one choice each: a case needs dozens of fields, and drawing each
# character through Hypothesis costs ~10x more. text() stays for the fields under test.
_TEXT_POOL = ("",) + _pool(ALPHABET, 400, 10, seed=0)
_WORD_POOL = _pool(WORD_ALPHABET, 400, 6, seed=1)


@functools.cache
def some_text(*, exclude: str = "", nonempty: bool = False) -> st.SearchStrategy[str]:
    """One of a few hundred prebuilt strings from ALPHABET, without ``exclude``."""
    words = [w for w in _TEXT_POOL if not set(w) & set(exclude) and (w or not nonempty)]
    return st.sampled_from(words)


@functools.cache
def some_word(*, exclude: str = "") -> st.SearchStrategy[str]:
    """One of a few hundred prebuilt words (no whitespace), without ``exclude``."""
    return st.sampled_from([w for w in _WORD_POOL if not set(w) & set(exclude)])


def insert(data: st.DataObject, value: str, piece: str) -> str:
    """``value`` with ``piece`` inserted at a drawn position."""
    at = data.draw(st.integers(0, len(value)), label="insert at")
    return value[:at] + piece + value[at:]


def insert_bytes(data: st.DataObject, value: bytes, piece: bytes) -> bytes:
    """``value`` with ``piece`` inserted at a drawn byte position (inside a character too)."""
    at = data.draw(st.integers(0, len(value)), label="insert at byte")
    return value[:at] + piece + value[at:]
