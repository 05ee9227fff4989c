"""retain_freed_memory: a large block freed and allocated again is reused without page faults."""
import ctypes
import ctypes.util
import platform
import resource

import pytest

from study.train.allocator import retain_freed_memory

BLOCK = 16 << 20  # 4096 pages of 4 KiB; glibc's defaults map such a block fresh on every allocation


def _faults_of_one_round(libc) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    p = libc.malloc(BLOCK)
    assert p
    ctypes.memset(p, 1, BLOCK)  # touch every page
    libc.free(p)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_freed_block_is_reused_without_faulting_its_pages_in_again():
    assert retain_freed_memory() is True
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    _faults_of_one_round(libc)  # grows the heap once
    assert _faults_of_one_round(libc) < BLOCK // 4096 // 16
