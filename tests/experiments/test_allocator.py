"""experiments/allocator.py: fixed malloc thresholds keep a freed block's pages (glibc only)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from metatoken.experiments.allocator import retain_freed_memory

# Allocates, touches and frees a 16 MiB block (above glibc's 128 KiB starting mmap threshold), then prints
# the resident pages that the free left behind (RSS after the free minus RSS before the allocation).
_PROBE = """
import ctypes, os, sys
from metatoken.experiments.allocator import retain_freed_memory
set_ = retain_freed_memory() if sys.argv[1] == "retain" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    return int(open("/proc/self/statm").read().split()[1])
before = rss()
n = 16 << 20
p = libc.malloc(n)
ctypes.memset(p, 1, n)
libc.free(p)
print(set_, rss() - before)
"""

linux_glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")


def _probe(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True).stdout
    flag, pages = out.split()
    return flag, int(pages)


@linux_glibc
def test_a_freed_block_stays_resident_only_with_the_thresholds_set():
    page = 4096
    flag, kept = _probe("default")
    assert flag == "False" and kept * page < 4 << 20  # glibc unmapped the 16 MiB block on free
    flag, kept = _probe("retain")
    assert flag == "True" and kept * page >= 15 << 20  # it stayed in the heap for the next allocation


def test_retain_freed_memory_is_idempotent():
    assert retain_freed_memory() == retain_freed_memory()
