"""Keeping a long-lived process's resident memory close to what it uses (glibc's allocator).

A queue worker and its OCR process live for days and handle pages of a few megabytes each. glibc's
malloc serves a block above its mmap threshold with a mapping of its own, unmapped when freed; below
it, from the heap, which gives memory back only from its top. The threshold starts at 128 KiB and
rises to the size of the largest mapped block freed (up to 32 MiB), so after the first page the
page-sized images and ONNX Runtime's tensors come from the heap, whose holes keep the OCR process
at 400-500 MB between pages where it uses under 200 (bench/scale.py, issue 15).

Nothing here changes what a process computes, only when freed memory goes back to the system. On a
C library other than glibc (musl, macOS) both functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

#: mallopt(3) parameters, <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def cap_mmap_threshold(threshold: int) -> bool:
    """Serve every block of ``threshold`` bytes or more with its own mapping, returned when freed.

    Fixing the threshold also stops glibc from raising it, and the heap is trimmed from its top
    once that much is free there. Below a few megabytes the page faults of fresh mappings cost
    measurable CPU (bench/scale.py's docstring has the numbers); pick the threshold with that.
    Returns whether the allocator took the setting.
    """
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, threshold))


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (``malloc_trim``): after a page or a model load,
    when what was freed will not be needed again at once."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
