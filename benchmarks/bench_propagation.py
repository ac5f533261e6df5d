"""Time and peak memory of label propagation against bare FAISS, scikit-learn and the authors' loop.

Run from the repository root:

    python benchmarks/bench_propagation.py [--scale 1.0] [--rounds N] [--out PATH]

Full size: 200,000 unlabeled x 20,000 labeled x 512-d float32 features around 100 cluster
centres, 80 labels per sample ({0, 1}, uint8, about 2.9 positives each); ``--scale s``
multiplies both sample counts by ``s`` (d stays 512) for a quick run. Writes
``benchmarks/results/propagation.md`` (or ``--out``) and prints it.

Compared, on the same data:

* ``propagate_labels`` with ``backend="faiss"`` and with ``backend="torch"`` (default chunks,
  no progress bar), labels, weights and exact distances included;
* a bare ``faiss.IndexFlatL2`` (index built, then one ``search(X_unlabeled, 1)``);
* scikit-learn ``NearestNeighbors(n_neighbors=1, algorithm="brute")``, fit + ``kneighbors``;
* the authors' double loop (``np.linalg.norm(x_u - x_l)`` for every pair, keep the minimum),
  timed on the first ``--loop-samples`` unlabeled samples against the whole labeled set and
  extrapolated linearly to all unlabeled samples.

Times come from ``time_interleaved`` (every method once per round, in turn; minimum and
median over rounds). Peak extra memory is measured once per method in a fresh subprocess that
makes the same data, resets the kernel's resident-set high-water mark (``/proc/self/clear_refs``)
and reads ``VmHWM - VmRSS`` around the call: every allocation that gets touched counts (NumPy,
torch, FAISS and BLAS buffers), the method's outputs included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import provenance_section, time_interleaved
from rmlc.propagation import chunk_layout, propagate_labels

FULL_UNLABELED, FULL_LABELED, DIM, LABELS, CLUSTERS = 200_000, 20_000, 512, 80, 100
SEED = 0
MiB = 2**20
PROPAGATE_FAISS = "propagate_labels (faiss)"
PROPAGATE_TORCH = "propagate_labels (torch)"
BARE_FAISS = "bare faiss.IndexFlatL2 search (k=1)"
SKLEARN = "scikit-learn NearestNeighbors (brute)"
LOOP = "authors' double loop (extrapolated)"
METHODS = [PROPAGATE_FAISS, PROPAGATE_TORCH, BARE_FAISS, SKLEARN]


# ---------------------------------------------------------------------------------------
# Data and methods
# ---------------------------------------------------------------------------------------


def make_data(n_unlabeled: int, n_labeled: int, seed: int = SEED):
    """Clustered float32 features and {0, 1} uint8 labels, filled in blocks (low peak)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM), dtype=np.float32)

    def features(count: int) -> np.ndarray:
        out = np.empty((count, DIM), dtype=np.float32)
        for start in range(0, count, 8192):
            stop = min(start + 8192, count)
            out[start:stop] = rng.standard_normal((stop - start, DIM), dtype=np.float32)
            out[start:stop] += centres[rng.integers(CLUSTERS, size=stop - start)]
        return out

    X_labeled, X_unlabeled = features(n_labeled), features(n_unlabeled)
    Y_labeled = (rng.random((n_labeled, LABELS), dtype=np.float32) < 2.9 / LABELS).astype(np.uint8)
    return X_labeled, Y_labeled, X_unlabeled


def methods(X_labeled, Y_labeled, X_unlabeled) -> dict[str, Callable[[], np.ndarray]]:
    """Each method as a call returning the (u,) neighbour indices."""
    import faiss
    from sklearn.neighbors import NearestNeighbors

    def propagate(backend: str) -> Callable[[], np.ndarray]:
        return lambda: (
            propagate_labels(
                X_labeled, Y_labeled, X_unlabeled, backend=backend, progress=False
            ).neighbors
        )

    def bare_faiss() -> np.ndarray:
        index = faiss.IndexFlatL2(X_labeled.shape[1])
        index.add(X_labeled)
        return index.search(X_unlabeled, 1)[1][:, 0]

    def sklearn_brute() -> np.ndarray:
        search = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(X_labeled)
        return search.kneighbors(X_unlabeled, return_distance=False)[:, 0]

    return {
        PROPAGATE_FAISS: propagate("faiss"),
        PROPAGATE_TORCH: propagate("torch"),
        BARE_FAISS: bare_faiss,
        SKLEARN: sklearn_brute,
    }


def authors_loop(X_labeled: np.ndarray, X_unlabeled: np.ndarray) -> list[int]:
    """The authors' propagation search: one ``np.linalg.norm`` call per pair."""
    neighbors = []
    for x_u in X_unlabeled:
        best_distance, best_index = np.inf, -1
        for index, x_l in enumerate(X_labeled):
            distance = np.linalg.norm(x_u - x_l)
            if distance < best_distance:
                best_distance, best_index = distance, index
        neighbors.append(best_index)
    return neighbors


# ---------------------------------------------------------------------------------------
# Peak memory, in a fresh subprocess per method
# ---------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child_peak_memory(method: str, n_unlabeled: int, n_labeled: int) -> None:
    """Print ``{"peak_extra": bytes, "reset": bool}`` for one call of ``method``."""
    data = make_data(n_unlabeled, n_labeled)
    call = methods(*data)[method]
    try:
        Path("/proc/self/clear_refs").write_text("5")  # high-water mark := current RSS
        reset = True
    except OSError:
        reset = False
    before = _status_kib("VmRSS")
    result = call()
    peak = _status_kib("VmHWM")
    del result
    print(json.dumps({"peak_extra": (peak - before) * 1024, "reset": reset}))


def peak_memory(method: str, n_unlabeled: int, n_labeled: int) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        method,
        "--sizes",
        str(n_unlabeled),
        str(n_labeled),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def machine_line() -> str:
    import faiss
    import sklearn

    model = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{model}, {os.cpu_count()} CPUs; threads: torch {torch.get_num_threads()}, "
        f"faiss {faiss.omp_get_max_threads()}; torch {torch.__version__}, faiss "
        f"{faiss.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )


def render(report: dict) -> str:
    n_unlabeled, n_labeled = report["sizes"]
    timings, memory, agreement = report["timings"], report["memory"], report["agreement"]
    loop = report["loop"]
    bare = timings[BARE_FAISS][0]
    lines = [
        "# Label propagation benchmark (CPU)",
        "",
        f"{n_unlabeled:,} unlabeled x {n_labeled:,} labeled x {DIM}-d float32 features around "
        f"{CLUSTERS} cluster centres, {LABELS} labels (uint8). {report['machine']}.",
        f"Load average before / after: {report['load_before']} / {report['load_after']} "
        "(the machine is shared: other jobs may have run during the measurements).",
        "",
        f"Times: {report['rounds']} interleaved round(s), every method once per round; "
        "minimum (median) seconds."
        + (
            " One round each at this size: minimum and median are that one run."
            if report["rounds"] == 1
            else ""
        ),
        "Peak extra memory: one call per method in a fresh subprocess on the same data, "
        "`VmHWM - VmRSS` around the call after resetting the high-water mark "
        "(`/proc/self/clear_refs`); counts every touched allocation (NumPy, torch, FAISS, BLAS), "
        "outputs included. 'same neighbours' compares with the bare FAISS search; a differing "
        "neighbour whose float64 distance equals FAISS's to 1e-6 relative counts as a tie.",
        "",
        "| method | time (s) | vs authors' loop | vs bare FAISS | peak extra memory (MiB) "
        "| same neighbours as bare FAISS |",
        "|---|---|---|---|---|---|",
    ]
    for name in METHODS:
        best, median = timings[name]
        lines.append(
            f"| {name} | {best:.2f} ({median:.2f}) | {loop['extrapolated'] / best:,.0f}x "
            f"| {best / bare:.2f}x | {memory[name] / MiB:,.1f} | {agreement[name]} |"
        )
    lines.append(
        f"| {LOOP} | {loop['extrapolated']:,.0f} (= {loop['seconds']:.2f} s for "
        f"{loop['samples']} samples x {n_unlabeled // loop['samples']:,}) | 1x "
        f"| {loop['extrapolated'] / bare:,.0f}x | not measured | {loop['agreement']} |"
    )

    bound = report["bound"]
    torch_chunk, torch_block = bound["layout"]["torch"]
    best_propagate = {name: timings[name][0] for name in (PROPAGATE_FAISS, PROPAGATE_TORCH)}
    speedups = {name: loop["extrapolated"] / value for name, value in best_propagate.items()}
    ratios = {name: value / bare for name, value in best_propagate.items()}

    def held(condition: bool) -> str:
        return "**held**" if condition else "**not held**"

    lines += [
        "",
        "## Targets",
        "",
        f"Default layouts: torch backend, chunks of {torch_chunk:,} unlabeled rows x labeled "
        f"blocks of {torch_block:,} rows (a {bound['tiles']['torch'] / MiB:.1f} MiB float32 "
        f"tile); faiss backend, chunks of {bound['layout']['faiss']:,} unlabeled rows per "
        f"search call (faiss's own tile: {bound['tiles']['faiss'] / MiB:.1f} MiB).",
        "",
        "- At least 100x faster than the authors' loop: "
        + ", ".join(f"{name} {speedups[name]:,.0f}x" for name in speedups)
        + f": {held(min(speedups.values()) >= 100)}.",
        "- At most 1.5x the bare FAISS search: "
        + ", ".join(f"{name} {ratios[name]:.2f}x" for name in ratios)
        + f": faiss backend {held(ratios[PROPAGATE_FAISS] <= 1.5)}, torch backend "
        f"{held(ratios[PROPAGATE_TORCH] <= 1.5)}.",
        "- Peak extra memory bounded by the chunk size: allowed = the backend's tile and "
        "centring buffer + "
        f"float64 re-check buffers ({bound['recheck'] / MiB:.1f} MiB) + outputs and their "
        f"temporaries ({bound['outputs'] / MiB:.1f} MiB) + {bound['allowance'] / MiB:.0f} MiB "
        "for BLAS buffers, thread stacks and the interpreter, + a float32 copy of the labeled "
        f"set ({bound['labeled'] / MiB:.1f} MiB: the faiss index's, or the torch search's "
        "centred one). A u x l distance matrix "
        f"would be {n_unlabeled * n_labeled * 4 / MiB:,.0f} MiB.",
    ]
    for name, backend in ((PROPAGATE_FAISS, "faiss"), (PROPAGATE_TORCH, "torch")):
        allowed = bound["allowed"][backend]
        lines.append(
            f"  - {name}: {memory[name] / MiB:,.1f} MiB of {allowed / MiB:,.1f} MiB allowed: "
            f"{held(memory[name] <= allowed)}."
        )
    if not report["reset"]:
        lines.append("  (the high-water mark could not be reset: peaks include data creation)")
    lines.append("")
    return "\n".join(lines)


def memory_bound(n_unlabeled: int, n_labeled: int) -> dict:
    """What each backend may hold beyond its inputs (see rmlc.propagation's docstring)."""
    torch_chunk, torch_block = chunk_layout(n_unlabeled, n_labeled, DIM, backend="torch")
    faiss_chunk, _ = chunk_layout(n_unlabeled, n_labeled, DIM, backend="faiss")
    centring = 16 * MiB  # faiss: the buffer its rows are centred through (rmlc.propagation)
    tiles = {
        # torch: the distance tile and the centred query buffer
        "torch": torch_chunk * torch_block * 4 + torch_chunk * DIM * 4,
        # faiss's own blocks: 4096 queries x 1024 labeled rows, and the centring buffer
        "faiss": min(4096, faiss_chunk) * min(1024, n_labeled) * 4 + centring,
    }
    recheck = 6 * MiB  # 2**19 float64 values (4 MiB) + the gathered float32 rows (2 MiB)
    # labels (uint8), neighbours (int64), distances (float64), exp temporaries, weights (float32)
    outputs = n_unlabeled * (LABELS + 8 + 8 + 8 + 8 + 4)
    # the faiss index's copy of the labeled set; the torch search's centred copy of it
    labeled = n_labeled * DIM * 4
    allowance = 32 * MiB  # BLAS packing buffers, thread stacks, interpreter
    common = recheck + outputs + allowance
    return {
        "layout": {"torch": (torch_chunk, torch_block), "faiss": faiss_chunk},
        "tiles": tiles,
        "recheck": recheck,
        "outputs": outputs,
        "labeled": labeled,
        "allowance": allowance,
        "allowed": {
            "torch": common + tiles["torch"] + labeled,
            "faiss": common + tiles["faiss"] + labeled,
        },
    }


def agreement(neighbors, reference, distances_of) -> str:
    neighbors, reference = np.asarray(neighbors), np.asarray(reference)
    same = neighbors == reference
    differing = np.flatnonzero(~same)
    ties = 0
    if len(differing):
        got, expected = distances_of(differing, neighbors), distances_of(differing, reference)
        ties = int(np.sum(np.abs(got - expected) <= 1e-6 * expected))
    text = f"{same.mean():.4%}"
    if len(differing):
        text += f" ({len(differing)} differ, {ties} of them ties)"
    return text


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies u and l")
    parser.add_argument("--rounds", type=int, default=None, help="default: 1 if u*l > 1e9 else 3")
    parser.add_argument("--loop-samples", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/propagation.md"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_peak_memory(args.child, *args.sizes)
        return

    n_unlabeled = max(args.loop_samples, round(FULL_UNLABELED * args.scale))
    n_labeled = max(1, round(FULL_LABELED * args.scale))
    rounds = args.rounds or (1 if n_unlabeled * n_labeled > 1e9 else 3)
    load_before = load_average()
    print(f"making {n_unlabeled:,} x {n_labeled:,} x {DIM} data ...", flush=True)
    X_labeled, Y_labeled, X_unlabeled = make_data(n_unlabeled, n_labeled)

    # Warm-up on a small problem: libraries loaded, thread pools started.
    for call in methods(*make_data(500, 200, seed=1)).values():
        call()

    results: dict[str, np.ndarray] = {}
    calls = methods(X_labeled, Y_labeled, X_unlabeled)

    def keeping(name: str) -> Callable[[], None]:
        return lambda: results.__setitem__(name, calls[name]())

    print(f"timing {len(calls)} methods, {rounds} round(s) ...", flush=True)
    timings = time_interleaved({name: keeping(name) for name in calls}, rounds, warmup=0)

    samples = min(args.loop_samples, n_unlabeled)
    print(f"timing the authors' loop on {samples} samples ...", flush=True)
    start = time.perf_counter()
    loop_neighbors = authors_loop(X_labeled, X_unlabeled[:samples])
    loop_seconds = time.perf_counter() - start

    def distances_of(rows: np.ndarray, neighbors: np.ndarray) -> np.ndarray:
        difference = X_unlabeled[rows].astype(np.float64) - X_labeled[neighbors[rows]]
        return np.linalg.norm(difference, axis=1)

    reference = results[BARE_FAISS]
    agreements = {name: agreement(results[name], reference, distances_of) for name in METHODS}
    loop_agreement = agreement(np.array(loop_neighbors), reference[:samples], distances_of)
    results.clear()

    memory, reset = {}, True
    for name in METHODS:
        print(f"peak memory of {name} (subprocess) ...", flush=True)
        measured = peak_memory(name, n_unlabeled, n_labeled)
        memory[name] = measured["peak_extra"]
        reset &= measured["reset"]

    report = {
        "sizes": (n_unlabeled, n_labeled),
        "rounds": rounds,
        "timings": timings,
        "memory": memory,
        "reset": reset,
        "agreement": agreements,
        "loop": {
            "samples": samples,
            "seconds": loop_seconds,
            "extrapolated": loop_seconds * n_unlabeled / samples,
            "agreement": loop_agreement,
        },
        "bound": memory_bound(n_unlabeled, n_labeled),
        "machine": machine_line(),
        "load_before": load_before,
        "load_after": load_average(),
    }
    text = render(report) + provenance_section()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
