"""Freed memory given back to the system between the night's stages (pipelines.memory)."""

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's"
)


def _run(code: str, env: dict[str, str] | None = None) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


@glibc
def test_give_back_returns_freed_heap_pages_the_heap_would_keep():
    # 100k blocks of 1 kB are malloc's (not Python's small-object arenas); one block
    # allocated after them pins the heap's top, so freeing them shrinks nothing by itself
    freed, after = _run(
        """
        import pyarrow  # give_back imports it: loading it must not count as memory kept
        from pipelines.memory import give_back
        def rss():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1e3
        blocks = [bytes(1000) + bytes([i % 256]) for i in range(100_000)]
        pin = bytes(1000) + b"x"
        del blocks
        freed = rss()
        give_back()
        print(freed, rss())
        """
    )
    assert float(freed) - float(after) > 50  # MB of the ~100 MB freed


@glibc
def test_large_blocks_are_mapped_in_this_process_and_the_ones_it_starts():
    from pipelines.memory import MMAP_THRESHOLD

    seen = _run(
        """
        import os, subprocess, sys
        from pipelines.memory import map_large_blocks
        map_large_blocks()
        child = "import os; print(os.environ['MALLOC_MMAP_THRESHOLD_'])"
        print(subprocess.run([sys.executable, "-c", child], capture_output=True,
                             text=True, check=True).stdout)
        """,
    )
    assert seen == [str(MMAP_THRESHOLD)]


def test_a_threshold_the_user_set_is_kept():
    seen = _run(
        """
        import os
        from pipelines.memory import map_large_blocks
        map_large_blocks()
        print(os.environ["MALLOC_MMAP_THRESHOLD_"])
        """,
        env={"MALLOC_MMAP_THRESHOLD_": "65536"},
    )
    assert seen == ["65536"]
