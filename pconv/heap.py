"""The C heap: giving its free memory back to the operating system.

Tensors and buffers of up to 32 MiB live in glibc's heap. When they are freed, glibc
keeps the pages for later allocations, so a long-running process (``pconv serve``)
stays at the resident size of its busiest moment. :func:`give_back_free_memory`
returns the free pages now; elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

__all__ = ["give_back_free_memory", "map_large_allocations"]

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


@cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc on Linux: ask the system (find_library may run ldconfig)
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
        except OSError:
            libc = None
    return libc if hasattr(libc, "malloc_trim") else None


def give_back_free_memory() -> bool:
    """Return the heap's free pages to the system (``malloc_trim``); False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def map_large_allocations(threshold: int) -> bool:
    """Serve every allocation of ``threshold`` bytes or more from its own mapping, returned
    to the system when freed (a fixed ``M_MMAP_THRESHOLD``, no longer raised by frees).
    Slower for code that allocates many such blocks; False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, threshold)
    return True
