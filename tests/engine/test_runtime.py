"""keep_freed_memory: a freed multi-megabyte array is reused without fresh page faults."""

import resource
import sys

import numpy as np
import pytest

from engine.runtime import keep_freed_memory


def faults_of_allocation(nbytes: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(nbytes // 8)  # touches every page
    del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_blocks_are_reused_without_page_faults():
    assert keep_freed_memory()
    nbytes = 16 * 1024 * 1024  # above glibc's default mmap threshold, below the new one
    faults_of_allocation(nbytes)  # first use maps the pages
    assert faults_of_allocation(nbytes) < 50  # reused: without the call, ~4096 faults (one per page)
