"""One whole ``churn`` process, timed, with the peak memory of it and of its children."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

CHURN = Path(sys.executable).with_name("churn")
GB = 1024**3


def _peak_bytes(process: psutil.Process) -> int:
    try:
        with open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Run:
    """One ``churn`` run: wall seconds, each process's peak (GB, see :func:`run_churn`)
    and ``at_once``, the most its processes held together at one poll (GB)."""

    seconds: float
    peaks: dict[str, float]
    at_once: float


def run_churn(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Wall seconds and the peak RSS (GB) of each process of one ``churn`` run.

    The process tree is polled every 0.2 s; each process's peak is its kernel
    high-water mark (``VmHWM``), so a short spike between two polls still counts.
    Peaks are named ``client`` (the ``churn`` process) and ``worker N`` (Dask workers,
    or the local engine's batch processes and their forkserver; largest first). Exits
    with the command's stderr when it fails.
    """
    run = measure_churn(args, env)
    return run.seconds, run.peaks


def measure_churn(args: list[str], env: dict[str, str]) -> Run:
    """:func:`run_churn`, and the most the processes it names held at once: the largest
    sum of their resident sizes at one poll. The processes peak at different stages,
    so the sum of their peaks only bounds it from above; pages they share (a forkserver's
    imports) count once per process, so this errs high too. A spike shorter than the
    poll interval can be missed; the per-process peaks cannot."""
    start = time.perf_counter()
    root = subprocess.Popen(
        [str(CHURN), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    top = psutil.Process(root.pid)
    peaks: dict[int, int] = {}
    labels: dict[int, str] = {root.pid: "client"}
    at_once = 0
    while root.poll() is None:
        try:
            family = [top, *top.children(recursive=True)]
        except psutil.Error:
            family = []
        held = 0
        for process in family:
            peaks[process.pid] = max(peaks.get(process.pid, 0), _peak_bytes(process))
            if process.pid not in labels:
                try:
                    line = " ".join(process.cmdline())
                except psutil.Error:
                    line = ""
                # Dask workers (spawned) and batch processes (forked by a forkserver)
                pool = "spawn_main" in line or "forkserver" in line
                labels[process.pid] = "worker" if pool else "helper"
            if labels[process.pid] != "helper":  # as the peaks: not Prefect's server
                try:
                    held += process.memory_info().rss
                except psutil.Error:
                    pass  # it ended between the listing and now
        at_once = max(at_once, held)
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if root.returncode != 0:
        raise SystemExit(f"churn {' '.join(args)} failed: {root.stderr.read().decode()}")
    named: dict[str, float] = {"client": peaks.get(root.pid, 0) / GB}
    workers = sorted((pid for pid in peaks if labels[pid] == "worker"), key=peaks.get)
    for i, pid in enumerate(reversed(workers)):
        named[f"worker {i + 1}"] = peaks[pid] / GB
    return Run(seconds, named, at_once / GB)
