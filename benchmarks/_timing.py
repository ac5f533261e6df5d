"""Helpers shared by the benchmarks: interleaved timing (minimum and median), peak memory,
provenance.

Shared machines are noisy, so every benchmark measures the things it compares in the same
rounds, interleaved, and reports the minimum (the least disturbed run) beside the median.
"""

from __future__ import annotations

import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from rmlc.provenance import provenance, provenance_markdown


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    functions: dict[str, Callable[[], object]],
    rounds: int,
    repeats: dict[str, int] | None = None,
    device: torch.device | None = None,
    warmup: int = 2,
    keep_samples: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, tuple[float, float]] | dict[str, list[float]]:
    """Seconds per call of each function, as ``(minimum, median)`` over interleaved rounds.

    Args:
        functions: name -> callable to time.
        rounds: rounds; each round calls every function ``repeats[name]`` times in a row.
        repeats: calls per round (default 1); the time of a round is divided by it.
        keep_samples: return each function's list of per-round times instead, in round
            order (for comparisons paired by round).
        clock: seconds now; ``time.thread_time`` (this thread's CPU time) instead of the
            wall clock makes single-threaded comparisons robust on a loaded machine.
    """
    repeats = repeats or {}
    device = device or torch.device("cpu")
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for function in functions.values():
        for _ in range(warmup):
            function()
    synchronize(device)
    for _ in range(rounds):
        for name, function in functions.items():
            count = repeats.get(name, 1)
            start = clock()
            for _ in range(count):
                function()
            synchronize(device)
            samples[name].append((clock() - start) / count)
    if keep_samples:
        return samples
    return {name: (min(values), statistics.median(values)) for name, values in samples.items()}


def process_memory(field: str) -> int:
    """Bytes of a memory ``field`` of this process (``"VmRSS"``: resident now; ``"VmHWM"``:
    the resident high-water mark), from ``/proc/self/status`` (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def restart_peak_memory() -> int:
    """Restart the resident high-water mark (``VmHWM``) from the resident size now, and
    return that size in bytes (Linux; ``OSError`` where ``/proc/self/clear_refs`` is not
    writable). Every allocation touched afterwards counts, NumPy, torch, FAISS and BLAS
    alike."""
    Path("/proc/self/clear_refs").write_text("5")
    return process_memory("VmRSS")


def peak_cpu_memory(function: Callable[[], object]) -> int:
    """Peak bytes held by tensors allocated during one call (CPU), from the profiler."""
    with torch.profiler.profile(profile_memory=True) as profile:
        function()
    events = sorted(profile.events(), key=lambda event: event.time_range.start)
    held = peak = 0
    for event in events:  # allocations are charged to the op that made them; frees stray
        held += event.self_cpu_memory_usage
        peak = max(peak, held)
    return peak


def peak_cuda_memory(function: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated on the GPU during one call, above what was held before it."""
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    function()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def provenance_section(device: str | None = None) -> str:
    """The closing ``## Provenance`` section of a benchmark's report: the command as run,
    the commit, the versions, the device and the date (:mod:`rmlc.provenance`)."""
    command = "python " + " ".join([sys.argv[0], *map(shlex.quote, sys.argv[1:])])
    record = provenance(command, device)
    return "\n".join(["", "## Provenance", "", *provenance_markdown(record), ""])
