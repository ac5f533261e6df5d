"""Sharded label propagation: one process against R processes (gloo), memory and time per rank.

Run from the repository root (about 10 minutes on 2 CPU cores at the defaults, measured
before the labeled rows were sharded too; each process's search work is the same):

    python benchmarks/bench_sharded_propagation.py [--labeled 200000] [--unlabeled 200000]
        [--dim 256] [--processes 2] [--out DIR]

Clustered float32 features (as network features), the same for every run: each block of
8,192 rows is drawn from its own seed, so a rank draws its shards of the labeled and of the
unlabeled rows alone.

* one process: holds every labeled and unlabeled feature and searches all (what every rank
  did before propagation was sharded: each gathered everything);
* R processes (``torch.distributed``, gloo): each holds only its own contiguous shard of
  the labeled features and of the unlabeled ones, and calls ``propagate_labels(...,
  shard_indices=..., labeled_shard_indices=...)``: the labeled shards are broadcast chunk
  by chunk (about 64 MiB each), every process searching its unlabeled rows against each.

Reported per process: peak resident memory above the size after imports (features
included), and seconds in ``propagate_labels`` (faiss's exact search, threads shared out:
each of R processes uses cores / R threads). The neighbours of the R shards, put together,
(labeled ids, i.e. rows of the whole labeled set) and the temperature must equal the
one-process result, except in rows where the shards' neighbour is nearer in float64
(they compare candidates across chunks in float64) or farther by at most ``2**-20``
relative (a near-tie the float32 search does not resolve); the temperature then within
``1e-9`` relative. Anything else exits with an error. Writes
``sharded-propagation-cpu-<l>x<u>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import process_memory, provenance_section, restart_peak_memory
from rmlc.atomic import atomic_write_text

BLOCK, CLUSTERS, SEED = 8192, 256, 0
NEAR_TIE = 2.0**-20  # relative distance gap the float32 search cannot resolve
MIB = 2**20


def features(rows: range, dim: int, stream: int) -> np.ndarray:
    """float32 ``(len(rows), dim)`` clustered features of these rows of stream ``stream``."""
    centres = np.random.default_rng(SEED).standard_normal((CLUSTERS, dim), dtype=np.float32) * 2
    out = np.empty((len(rows), dim), dtype=np.float32)
    for block in range(rows.start // BLOCK, (rows.stop - 1) // BLOCK + 1 if len(rows) else 0):
        rng = np.random.default_rng((SEED, stream, block))
        drawn = rng.standard_normal((BLOCK, dim), dtype=np.float32)
        drawn += centres[rng.integers(CLUSTERS, size=BLOCK)]
        start, stop = max(rows.start, block * BLOCK), min(rows.stop, (block + 1) * BLOCK)
        out[start - rows.start : stop - rows.start] = drawn[
            start - block * BLOCK : stop - block * BLOCK
        ]
    return out


def run(rank: int, processes: int, args: argparse.Namespace, folder: str) -> None:
    """One process of a run: ``processes == 1`` searches everything."""
    import faiss
    import torch
    import torch.distributed as dist

    from rmlc.propagation import propagate_labels

    threads = max(1, (os.cpu_count() or 1) // processes)
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    if processes > 1:
        dist.init_process_group(
            "gloo", init_method=f"file://{folder}/store", rank=rank, world_size=processes
        )
    before = restart_peak_memory()
    labeled_share = -(-args.labeled // processes)
    labeled_rows = range(rank * labeled_share, min(args.labeled, (rank + 1) * labeled_share))
    labeled = features(labeled_rows, args.dim, 0)
    # each labeled row's own index in the whole labeled set (as the trainer does): the
    # "labels" propagated are the neighbours' ids, comparable across runs
    labels = np.arange(labeled_rows.start, labeled_rows.stop)
    share = -(-args.unlabeled // processes)
    rows = range(rank * share, min(args.unlabeled, (rank + 1) * share))
    unlabeled = features(rows, args.dim, 1)
    started = time.perf_counter()
    result = propagate_labels(
        labeled,
        labels,
        unlabeled,
        backend="faiss",
        progress=False,
        shard_indices=np.arange(rows.start, rows.stop) if processes > 1 else None,
        labeled_shard_indices=labels if processes > 1 else None,
    )
    seconds = time.perf_counter() - started
    peak = process_memory("VmHWM") - before
    np.save(f"{folder}/neighbors-{processes}-{rank}.npy", result.labels)
    np.save(f"{folder}/distances-{processes}-{rank}.npy", np.asarray(result.distances))
    with open(f"{folder}/report-{processes}-{rank}.json", "w") as handle:
        json.dump({"seconds": seconds, "peak": peak, "t": result.t}, handle)
    if processes > 1:
        dist.destroy_process_group()


def launch(processes: int, args: argparse.Namespace, folder: str) -> list[dict]:
    context = mp.get_context("spawn")
    workers = [
        context.Process(target=run, args=(rank, processes, args, folder))
        for rank in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a process of the {processes}-process run failed")
    reports = []
    for rank in range(processes):
        with open(f"{folder}/report-{processes}-{rank}.json") as handle:
            reports.append(json.load(handle))
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labeled", type=int, default=200_000)
    parser.add_argument("--unlabeled", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        single = launch(1, args, folder)[0]
        sharded = launch(args.processes, args, folder)
        whole, parts = (
            {
                kind: np.concatenate([np.load(f"{folder}/{kind}-{n}-{r}.npy") for r in range(n)])
                for kind in ("neighbors", "distances")
            }
            for n in (1, args.processes)
        )
    differing = np.flatnonzero(whole["neighbors"] != parts["neighbors"])
    # signed: < 0 where the shards' neighbour is the nearer in float64
    signed = (parts["distances"] - whole["distances"])[differing] / whole["distances"][differing]
    farther = signed[signed > 0]
    t_gap = max(abs(r["t"] - single["t"]) for r in sharded) / single["t"]
    # Where the shards' neighbour is farther, it must be by less than the float32 search
    # resolves (a near-tie broken the other way): the documented limit of the equality.
    # Nearer is allowed: the shards compare their candidates in float64.
    equal = (differing.size == 0 and t_gap == 0.0) or (
        (farther.size == 0 or farther.max() <= NEAR_TIE) and t_gap <= 1e-9
    )
    feature_mib = (args.labeled + args.unlabeled) * args.dim * 4 / MIB
    lines = [
        "# Sharded label propagation (CPU)",
        "",
        f"{args.labeled:,} labeled x {args.unlabeled:,} unlabeled x {args.dim}-d float32 "
        f"clustered features ({feature_mib:,.0f} MiB in all); exact search (faiss); "
        f"{os.cpu_count()} CPU cores shared out among the processes. Sharded: each process "
        "holds its own shard of the labeled and of the unlabeled rows; the labeled shards "
        "are broadcast chunk by chunk.",
        "",
        "| run | process | peak memory MiB (features included) | seconds |",
        "|---|---|---|---|",
        f"| 1 process (as every rank did before sharding) | 0 | {single['peak'] / MIB:,.0f} | "
        f"{single['seconds']:.1f} |",
    ]
    for rank, report in enumerate(sharded):
        lines.append(
            f"| {args.processes} processes (sharded) | {rank} | {report['peak'] / MIB:,.0f} | "
            f"{report['seconds']:.1f} |"
        )
    largest = max(report["peak"] for report in sharded)
    lines += [
        "",
        f"- The {args.processes} shards' neighbours (labeled ids) put together "
        + (
            "equal the one-process result."
            if differing.size == 0
            else f"**differ from** the one-process result in {differing.size:,} of "
            f"{args.unlabeled:,} rows: there, the shards' neighbour is nearer in float64 in "
            f"{int((signed < 0).sum())} (the one-process float32 search took the farther of "
            f"two candidates), farther in {farther.size}"
            + (f" (by at most {farther.max():.2e} relative)" if farther.size else "")
            + f", an exact tie in {int((signed == 0).sum())}; the float64 distances differ "
            f"by at most {np.abs(signed).max():.2e} relative."
        ),
        f"- The temperature {'equals' if t_gap == 0 else 'differs from'} the one-process "
        f"one (relative difference {t_gap:.2e}).",
        f"- Largest peak per process: {largest / single['peak']:.2f}x the one-process peak.",
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"sharded-propagation-cpu-{args.labeled}x{args.unlabeled}.md"
    atomic_write_text("\n".join(lines) + provenance_section("cpu"), path)
    print(path.read_text())
    if not equal:
        raise SystemExit("sharded result differs from the one-process result beyond near-ties")


if __name__ == "__main__":
    main()
