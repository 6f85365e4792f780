"""jaxrec.malloc: freed memory stays with the process for reuse."""

import subprocess
import sys

import pytest

# Allocates and frees 256 MiB through malloc, then prints how much of it is still resident.
PROBE = """
import ctypes, sys
from jaxrec import malloc
if sys.argv[1] == "keep":
    assert malloc.keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
size = 256 << 20
before = rss()
p = libc.malloc(size)
ctypes.memset(p, 1, size)
libc.free(ctypes.c_void_p(p))
print((rss() - before) / size)
"""


def resident_share_after_free(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_freed_buffers_stay_resident_for_reuse():
    assert resident_share_after_free("default") < 0.1  # glibc unmapped the large block
    assert resident_share_after_free("keep") > 0.9  # kept: the next step reuses the pages
