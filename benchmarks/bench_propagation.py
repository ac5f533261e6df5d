"""Time and peak memory of label propagation against bare FAISS, scikit-learn and the authors' loop.

Run from the repository root:

    python benchmarks/bench_propagation.py [--scale 1.0] [--rounds N] [--out PATH]
    python benchmarks/bench_propagation.py --part ann [--scale 1.0] [--out PATH]

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

``--part ann``: the approximate indexes (``index="ivf"``, ``"hnsw"``) against the exact search,
all through ``propagate_labels`` (faiss backend, index built in the call). Full size: 200,000
labeled x 20,000 unlabeled x 128-d float32 features made like a network's penultimate layer:
1,000 clusters in a 32-d latent space, mapped into 128-d by a random linear layer, plus
isotropic noise, a bias and a ReLU (low intrinsic dimension, non-negative, a shared offset).
Reports the time of each call (one round; minimum of ``--rounds``) and, against the exact
search, recall@1 (same neighbour, or one at the same float64 distance to 1e-6 relative), the
mean ratio of the chosen neighbour's distance to the exact one and the largest change of a
weight (``t="mean"``). Writes ``benchmarks/results/propagation-ann.md``.
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

from _timing import process_memory, provenance_section, restart_peak_memory, time_interleaved
from rmlc.propagation import chunk_layout, index_settings, propagate_labels

FULL_UNLABELED, FULL_LABELED, DIM, LABELS, CLUSTERS = 200_000, 20_000, 512, 80, 100
SEED = 0
MiB = 2**20
PROPAGATE_FAISS = "propagate_labels (faiss)"
PROPAGATE_TORCH = "propagate_labels (torch)"
BARE_FAISS = "bare faiss.IndexFlatL2 search (k=1)"
SKLEARN = "scikit-learn NearestNeighbors (brute)"
LOOP = "authors' double loop (extrapolated)"
METHODS = [PROPAGATE_FAISS, PROPAGATE_TORCH, BARE_FAISS, SKLEARN]


ANN_LABELED, ANN_UNLABELED, ANN_DIM, ANN_LATENT, ANN_CLUSTERS = 200_000, 20_000, 128, 32, 1000


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


def child_peak_memory(method: str, n_unlabeled: int, n_labeled: int) -> None:
    """Print ``{"peak_extra": bytes, "reset": bool}`` for one call of ``method``."""
    data = make_data(n_unlabeled, n_labeled)
    call = methods(*data)[method]
    try:
        before, reset = restart_peak_memory(), True
    except OSError:
        before, reset = process_memory("VmRSS"), False
    result = call()
    peak = process_memory("VmHWM")
    del result
    print(json.dumps({"peak_extra": peak - before, "reset": reset}))


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


# ---------------------------------------------------------------------------------------
# --part ann: approximate indexes against the exact search
# ---------------------------------------------------------------------------------------


def make_ann_data(n_labeled: int, n_unlabeled: int, seed: int = SEED):
    """Network-like features (see the module docstring) and {0, 1} uint8 labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ANN_CLUSTERS, ANN_LATENT), dtype=np.float32)
    layer = rng.standard_normal((ANN_LATENT, ANN_DIM), dtype=np.float32) / np.sqrt(ANN_LATENT)
    bias = np.float32(0.5)

    def features(count: int) -> np.ndarray:
        out = np.empty((count, ANN_DIM), dtype=np.float32)
        for start in range(0, count, 8192):
            stop = min(start + 8192, count)
            latent = centres[rng.integers(ANN_CLUSTERS, size=stop - start)]
            latent += 0.5 * rng.standard_normal((stop - start, ANN_LATENT), dtype=np.float32)
            block = latent @ layer + bias
            block += 0.05 * rng.standard_normal(block.shape, dtype=np.float32)
            out[start:stop] = np.maximum(block, 0)
        return out

    X_labeled, X_unlabeled = features(n_labeled), features(n_unlabeled)
    Y_labeled = (rng.random((n_labeled, LABELS), dtype=np.float32) < 2.9 / LABELS).astype(np.uint8)
    return X_labeled, Y_labeled, X_unlabeled


def ann_configurations(n_labeled: int) -> list[tuple[str, str, dict[str, int]]]:
    """(name, index, index_params) of each search measured: exact, IVF at a few nprobe
    (its default among them), HNSW at its default and a larger ef_search."""
    ivf = index_settings("ivf", None, n_labeled)
    hnsw = index_settings("hnsw", None, n_labeled)
    probes = sorted({4, 16, ivf["nprobe"], 4 * ivf["nprobe"]} & set(range(1, ivf["nlist"] + 1)))
    configurations = [("exact (IndexFlatL2)", "exact", {})]
    for nprobe in probes:
        default = " (default)" if nprobe == ivf["nprobe"] else ""
        configurations.append((f"IVF nprobe={nprobe}{default}", "ivf", {"nprobe": nprobe}))
    for ef_search in (hnsw["ef_search"], 2 * hnsw["ef_search"]):
        default = " (default)" if ef_search == hnsw["ef_search"] else ""
        configurations.append(
            (f"HNSW ef_search={ef_search}{default}", "hnsw", {"ef_search": ef_search})
        )
    return configurations


def build_seconds(index: str, X_labeled: np.ndarray) -> float:
    """Seconds to build (and, for IVF, train) the index ``propagate_labels`` builds, with
    its default settings, on the centred labeled rows: the part of a call that does not
    grow with the unlabeled set."""
    import faiss

    from rmlc.propagation.search import search_for

    center = torch.from_numpy(X_labeled.mean(axis=0, dtype=np.float64).astype(np.float32))
    centred = X_labeled - center.numpy()
    start = time.perf_counter()
    if index == "exact":
        built = faiss.IndexFlatL2(X_labeled.shape[1])
    else:
        search = search_for(index, "faiss")(index_settings(index, None, len(X_labeled)))
        built, _ = search.build(faiss, torch.from_numpy(X_labeled), center, torch.device("cpu"))
    built.add(centred)
    return time.perf_counter() - start


def run_ann(args: argparse.Namespace) -> str:
    n_labeled = max(1, round(ANN_LABELED * args.scale))
    n_unlabeled = max(1, round(ANN_UNLABELED * args.scale))
    rounds = args.rounds or 1
    load_before = load_average()
    print(f"making {n_labeled:,} labeled x {n_unlabeled:,} unlabeled x {ANN_DIM} data ...")
    X_labeled, Y_labeled, X_unlabeled = make_ann_data(n_labeled, n_unlabeled)
    warm = make_ann_data(2000, 200, seed=1)
    for _, index, params in ann_configurations(2000):  # libraries loaded, threads started
        propagate_labels(*warm, backend="faiss", index=index, index_params=params)

    rows = []
    exact = None
    builds: dict[str, float] = {}  # the index's build: a call with one unlabeled row
    for name, index, params in ann_configurations(n_labeled):
        if index not in builds:
            print(f"timing the build of the {index} index ...", flush=True)
            builds[index] = build_seconds(index, X_labeled)
        print(f"timing {name} ...", flush=True)
        seconds = []
        for _ in range(rounds):
            start = time.perf_counter()
            result = propagate_labels(
                X_labeled,
                Y_labeled,
                X_unlabeled,
                backend="faiss",
                progress=False,
                index=index,
                index_params=params,
            )
            seconds.append(time.perf_counter() - start)
        if exact is None:
            exact = result
        same = result.neighbors == exact.neighbors
        tied = np.abs(result.distances - exact.distances) <= 1e-6 * exact.distances
        positive = exact.distances > 0  # a zero exact distance is found by every search
        ratio = result.distances[positive] / exact.distances[positive]
        rows.append(
            {
                "name": name,
                "settings": index_settings(index, params, n_labeled),
                "seconds": min(seconds),
                "build": builds[index],
                "recall": float(np.mean(same | tied)),
                "exact_neighbour": float(np.mean(same)),
                "ratio": float(np.mean(ratio)) if len(ratio) else 1.0,
                "weight_change": np.abs(result.weights - exact.weights),
                "t": result.t,
            }
        )
    report = {
        "sizes": (n_labeled, n_unlabeled),
        "rounds": rounds,
        "rows": rows,
        "machine": machine_line(),
        "load_before": load_before,
        "load_after": load_average(),
        "note": args.note,
    }
    return render_ann(report)


def render_ann(report: dict) -> str:
    n_labeled, n_unlabeled = report["sizes"]
    rows = report["rows"]
    exact_seconds = rows[0]["seconds"]
    exact_search = rows[0]["seconds"] - rows[0]["build"]
    lines = [
        "# Label propagation: approximate FAISS indexes against the exact search (CPU)",
        "",
        f"{n_labeled:,} labeled x {n_unlabeled:,} unlabeled x {ANN_DIM}-d float32 features "
        f"made like a network's penultimate layer: {ANN_CLUSTERS:,} clusters in a "
        f"{ANN_LATENT}-d latent space, a random linear map to {ANN_DIM}-d, isotropic noise, a "
        f"bias and a ReLU. {report['machine']}.",
        f"Load average before / after: {report['load_before']} / {report['load_after']}. "
        + (report.get("note") or "No other job was known to run (`--note` says otherwise)."),
        "",
        'Every row is one `propagate_labels(..., backend="faiss", index=..., '
        "index_params=...)` call, index built (and, for IVF, trained) inside the call, labels, "
        "weights and exact distances included; "
        + (
            "one call each."
            if report["rounds"] == 1
            else f"minimum of {report['rounds']} calls each."
        ),
        "recall@1: the exact search's neighbour, or one at the same float64 distance "
        "(1e-6 relative); distance ratio: mean of the chosen neighbour's distance over the "
        "exact one; weight change: mean and largest absolute difference from the exact "
        'search\'s weights (`t="mean"`, each run taking it over its own distances); '
        "speed-up: the exact call's time over this one's, and the same for the search "
        "alone. Build: the index built (and, for IVF, trained) alone, once per index, as "
        "`propagate_labels` builds it; search: the time less the build, the part that grows "
        "with the unlabeled set (an estimate from separate calls: '–' where it came out at "
        "or below 0, i.e. within the calls' noise).",
        "",
        "| search | settings | time (s) | build (s) | search (s) | speed-up (time / search) "
        "| recall@1 | distance ratio | weight change (mean / max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        settings = ", ".join(f"{key}={value}" for key, value in row["settings"].items()) or "-"
        search = row["seconds"] - row["build"]
        search_text, speedup_text = (
            (f"{search:.2f}", f"{exact_search / search:.1f}x") if search > 0 else ("–", "–")
        )
        lines.append(
            f"| {row['name']} | {settings} | {row['seconds']:.2f} | {row['build']:.2f} "
            f"| {search_text} | {exact_seconds / row['seconds']:.2f}x / "
            f"{speedup_text} | {row['recall']:.4f} "
            f"| {row['ratio']:.4f} | {row['weight_change'].mean():.5f} / "
            f"{row['weight_change'].max():.4f} |"
        )
    lines.append("")
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies u and l")
    parser.add_argument(
        "--rounds", type=int, default=None, help="default: 1 if u*l > 1e9 else 3 (ann: 1)"
    )
    parser.add_argument("--loop-samples", type=int, default=20)
    parser.add_argument(
        "--part",
        choices=("exact", "ann"),
        default="exact",
        help="exact: the exact search against FAISS, scikit-learn and the authors' loop; "
        "ann: the approximate indexes against the exact search",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: benchmarks/results/propagation.md (propagation-ann.md for --part ann)",
    )
    parser.add_argument("--note", default="", help="a sentence on the machine's state")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_peak_memory(args.child, *args.sizes)
        return
    if args.part == "ann":
        text = run_ann(args) + provenance_section()
        out = args.out or Path("benchmarks/results/propagation-ann.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(text)
        return
    args.out = args.out or Path("benchmarks/results/propagation.md")

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
