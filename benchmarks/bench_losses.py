"""Forward + backward time and peak memory of the losses, and their share of a training step.

Run from the repository root:

    python benchmarks/bench_losses.py [--device cuda] [--rounds 30] [--out benchmarks/results]
    python benchmarks/bench_losses.py --known-only [--rounds 30] [--cpu-time]

Writes ``losses-<device>.md`` and ``losses-known-<device>.md``: the latter times each loss
with ``known=None`` against an all-True ``known`` mask and a mask of one unknown entry
(partial labels), paired by round (``--known-only`` runs that part alone; ``--cpu-time``
times it on one thread by that thread's CPU time, which a loaded machine disturbs far less
than the wall clock). Label density is COCO-like: 2.9 positives per image for m = 80 and
81, 1% for m = 1000. The literal loop is ``tests/reference.py`` (Python floats,
one sample, positive and negative at a time), timed on its forward pass only, on CPU.
On CPU a last table times the RMLC loss's kernels against each other as positives grow.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import reference
from _timing import peak_cpu_memory, peak_cuda_memory, provenance_section, time_interleaved
from rmlc.losses import AsymmetricLoss, BCELoss, RMLCLoss, WARPLoss
from rmlc.losses import functional as F
from rmlc.losses.base import check_known

SHAPES = [(96, 80, 2.9 / 80), (96, 81, 2.9 / 81), (256, 1000, 0.01)]
KERNEL_POSITIVES = [3, 10, 30, 100, 300]
# (N, m, positives per image) of the known-mask comparison: COCO-like and Open-Images-like
KNOWN_SHAPES = [(96, 80, 2.9), (96, 20_000, 8.0)]


def make_batch(n: int, m: int, density: float, device: torch.device, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, m, generator=generator) * 2).to(device)
    targets = (torch.rand(n, m, generator=generator) < density).float().to(device)
    return logits, targets


def backward_steps(losses: dict, logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """name -> a callable running forward + backward of that loss on a copy of ``logits``."""
    leaf = logits.clone().requires_grad_(True)

    def step(loss):
        def run():
            leaf.grad = None
            loss(leaf, targets).backward()

        return run

    return {name: step(loss) for name, loss in losses.items()}


def loss_steps(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    losses = {
        "RMLC (sampled)": RMLCLoss.paper(),
        # the recommended loss after its warm start: the balanced margin term is computed in
        # torch beside the fused ranking kernel
        "RMLC recommended (sampled)": RMLCLoss(hinge_steps=0),
        "RMLC (exact)": RMLCLoss.paper(rank="exact"),
    }
    if logits.device.type == "cpu":  # the default is the fused kernel; the best torch one too
        torch_kernel = "pairs" if logits.shape[1] < 1000 else "sorted"
    else:  # the default is the fused Triton kernel; the torch one it replaced
        torch_kernel = "dense" if logits.shape[1] < 1000 else "sorted"
    losses[f"RMLC (sampled, {torch_kernel} kernel)"] = RMLCLoss.paper(kernel=torch_kernel)
    losses |= {
        "WARP (sampled)": WARPLoss(),
        "BCE": BCELoss(),
        "ASL": AsymmetricLoss(),
    }
    return backward_steps(losses, logits, targets)


def bench_shapes(device: torch.device, rounds: int) -> list[dict]:
    rows = []
    for n, m, density in SHAPES:
        logits, targets = make_batch(n, m, density, device)
        steps = loss_steps(logits, targets)
        repeats = {name: 20 if m < 1000 else 3 for name in steps}
        if device.type == "cpu":
            logit_rows, target_rows = logits.tolist(), targets.tolist()
            steps["literal loop (forward)"] = lambda lr=logit_rows, tr=target_rows: (
                reference.literal_loss(lr, tr, rank="sampled")
            )
            repeats["literal loop (forward)"] = 1
        timings = time_interleaved(steps, rounds, repeats, device)
        for name, step in steps.items():
            if name.startswith("literal"):
                memory = None
            elif device.type == "cuda":
                memory = peak_cuda_memory(step, device)
            else:
                memory = peak_cpu_memory(step)
            rows.append(
                {
                    "shape": (n, m),
                    "positives": float(targets.sum() / n),
                    "name": name,
                    "min": timings[name][0],
                    "median": timings[name][1],
                    "memory": memory,
                }
            )
    return rows


def bench_kernels(rounds: int) -> list[dict]:
    """CPU forward + backward of the sampled RMLC loss by kernel at (256, 1000), by the number
    of positives per image: where ``kernel="auto"`` should switch from fused to sorted."""
    rows = []
    for per_image in KERNEL_POSITIVES:
        logits, targets = make_batch(256, 1000, per_image / 1000, torch.device("cpu"))
        losses = {kernel: RMLCLoss.paper(kernel=kernel) for kernel in ("fused", "pairs", "sorted")}
        steps = backward_steps(losses, logits, targets)
        timings = time_interleaved(steps, max(rounds // 3, 3), {name: 2 for name in steps})
        rows.append({"positives": per_image} | {name: value[0] for name, value in timings.items()})
    return rows


def bench_known_mask(device: torch.device, rounds: int, cpu_time: bool = False) -> list[dict]:
    """Forward + backward with ``known=None``, with an all-True mask (the values are
    bit-equal) and with a mask of one unknown entry (the masked kernels' cost, which the
    all-True mask skips on CPU), in the same rounds."""
    rows = []
    for n, m, per_image in KNOWN_SHAPES:
        logits, targets = make_batch(n, m, per_image / m, device)
        leaf = logits.clone().requires_grad_(True)
        everything = torch.ones(n, m, dtype=torch.bool, device=device)
        almost = everything.clone()
        almost[0, 0] = False
        masks = {"plain": None, "all": everything, "one unknown": almost}
        losses = {
            "RMLC recommended (sampled)": RMLCLoss(hinge_steps=0),
            "RMLC paper (sampled)": RMLCLoss.paper(),
            "WARP (sampled)": WARPLoss(),
            "BCE": BCELoss(),
        }
        steps = {}
        for name, loss in losses.items():
            for variant, mask in masks.items():

                def run(loss=loss, known=mask, leaf=leaf, y=targets):
                    leaf.grad = None
                    loss(leaf, y, known=known).backward()

                steps[(name, variant)] = run

        def check(known=everything, leaf=leaf):  # all the all-known mask adds on CPU
            return check_known(known, leaf) is not None and bool(known.numpy().all())

        steps["check"] = check
        repeats = dict.fromkeys(steps, 20 if m < 1000 else 2)
        clock = time.thread_time if cpu_time else time.perf_counter
        samples = time_interleaved(steps, rounds, repeats, device, keep_samples=True, clock=clock)
        for name in losses:
            row = {"shape": (n, m), "positives": float(targets.sum() / n), "name": name}
            plain = samples[(name, "plain")]
            row["check"] = min(samples["check"]) / min(plain)
            for variant in masks:
                times = samples[(name, variant)]
                ratios = [b / a for a, b in zip(plain, times, strict=True)]
                row[variant] = (min(times), statistics.median(times))
                row[f"{variant} ratio"] = (statistics.median(ratios), min(times) / min(plain))
            rows.append(row)
    return rows


def render_known(rows: list[dict], device: torch.device, rounds: int, cpu_time: bool) -> str:
    clock = "the thread's CPU time (time.thread_time)" if cpu_time else "wall clock"
    lines = [
        f"# Losses with an all-known mask on {device.type.upper()}",
        "",
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} thread(s), {rounds} rounds, {clock}",
        "",
        "Forward + backward per call with `known=None`, with `known` an all-True `(N, m)` "
        "bool mask (values and gradients bit-equal: tests/losses/test_known_mask.py; on CPU "
        "the loss sees that every entry is known and takes the unmasked path) and with a "
        "mask of one unknown entry (the masked kernels, as for any partially labelled "
        "batch), timed in the same interleaved rounds: minimum (median) in ms, and the "
        "median over rounds of the time / the `known=None` time in the same round (paired) "
        "with the ratio of the fastest rounds. Target: the all-known mask at most 1.1x. "
        "'check' is what the all-known mask adds to the unmasked path on CPU (the mask's "
        "check and one `known.numpy().all()`), timed alone in the same rounds: 1 + its "
        "fastest time / the fastest `known=None` time, a bound on the ratio that the noise "
        "of a shared machine does not move.",
        "",
        "| (N, m) | pos. / image | loss | known=None (ms) | all-known (ms) | ratio paired "
        "/ minima | check | one unknown (ms) | ratio paired / minima |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [str(r["shape"]), f"{r['positives']:.1f}", r["name"]]
        for variant in ("plain", "all", "one unknown"):
            cells.append(f"{r[variant][0] * 1e3:.3f} ({r[variant][1] * 1e3:.3f})")
            if variant != "plain":
                paired, minima = r[f"{variant} ratio"]
                cells.append(f"{paired:.3f} / {minima:.3f}")
            if variant == "all":
                cells.append(f"{1 + r['check']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def gpu_seconds_per_call(function, calls: int = 20) -> float:
    """GPU time of one call: the kernels' durations summed by the profiler, per call."""
    from torch.profiler import ProfilerActivity, profile

    function()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as profiled:
        for _ in range(calls):
            function()
        torch.cuda.synchronize()
    return sum(event.self_device_time_total for event in profiled.key_averages()) / calls / 1e6


def bench_training_step(device: torch.device, rounds: int) -> dict:
    """A ResNet-18 SGD step at batch 96, 32x32 input, 80 labels: with the RMLC loss, with
    BCE, with a free loss (the mean of the logits: one operation each way), and the RMLC
    loss alone. Value checks are off, as in the trainer (targets checked once when data is
    loaded).

    Step times are noisy at the scale of a loss, so the share of each loss inside the step
    is the median over interleaved rounds of ``(step with it - step with the free loss) /
    step with it``, the three steps measured in the same round. On CUDA the profiler also
    gives the GPU time of the loss and of the step.
    """
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=80).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(96, 3, 32, 32, device=device)
    _, targets = make_batch(96, 80, 2.9 / 80, device)
    rmlc, bce = RMLCLoss.paper(), BCELoss()
    rmlc.check_values = bce.check_values = False

    def free(logits: torch.Tensor, _targets: torch.Tensor) -> torch.Tensor:
        return logits.mean()

    def training_step(loss):
        def run():
            optimizer.zero_grad(set_to_none=True)
            loss(model(images), targets).backward()
            optimizer.step()

        return run

    logits = torch.randn(96, 80, device=device, requires_grad=True)

    def loss_only():
        logits.grad = None
        rmlc(logits, targets).backward()

    steps = {"rmlc": training_step(rmlc), "bce": training_step(bce), "free": training_step(free)}
    step_rounds = max(rounds * 2, 10)
    timings = time_interleaved(
        steps | {"loss": loss_only},
        step_rounds,
        {"rmlc": 3, "bce": 3, "free": 3, "loss": 20},
        device,
        keep_samples=True,
    )
    result = {name: min(samples) for name, samples in timings.items()}
    for name in ("rmlc", "bce"):
        pairs = zip(timings[name], timings["free"], strict=True)
        result[f"{name}_in_step"] = statistics.median((a - b) / a for a, b in pairs)
    if device.type == "cuda":
        result["gpu_loss"] = gpu_seconds_per_call(loss_only)
        result["gpu_step"] = gpu_seconds_per_call(steps["rmlc"])
    return result


def render(rows: list[dict], step: dict, device: torch.device, kernels: list[dict]) -> str:
    lines = [
        f"# Loss benchmark on {device.type.upper()}",
        "",
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "",
        "Forward + backward per call: minimum (median) over interleaved rounds. "
        "'vs literal' is the literal loop's forward time divided by the loss's forward + "
        "backward time (minimum over rounds for both).",
        "",
        "| (N, m) | positives / image | loss | time (ms) | peak extra memory (MiB) | vs literal |",
        "|---|---|---|---|---|---|",
    ]
    literal = {r["shape"]: r["min"] for r in rows if r["name"].startswith("literal")}
    for r in rows:
        ratio = ""
        if r["shape"] in literal and not r["name"].startswith("literal"):
            ratio = f"{literal[r['shape']] / r['min']:.0f}x"
        memory = "" if r["memory"] is None else f"{r['memory'] / 2**20:.2f}"
        lines.append(
            f"| {r['shape']} | {r['positives']:.1f} | {r['name']} | "
            f"{r['min'] * 1e3:.3f} ({r['median'] * 1e3:.3f}) | {memory} | {ratio} |"
        )
    share = 100 * step["loss"] / step["rmlc"]
    marginal = 100 * (step["rmlc"] - step["bce"]) / step["bce"]
    lines += [
        "",
        f"ResNet-18 training step (batch 96, 32x32, 80 labels, SGD), fastest round: "
        f"{step['rmlc'] * 1e3:.2f} ms with the RMLC loss, {step['bce'] * 1e3:.2f} ms with "
        f"BCE, {step['free'] * 1e3:.2f} ms with a free loss (the mean of the logits). "
        f"Inside the step (median over rounds of the difference to the free loss's step): "
        f"the RMLC loss costs **{100 * step['rmlc_in_step']:.2f}%** of the step, BCE "
        f"{100 * step['bce_in_step']:.2f}%. The RMLC loss alone (forward + backward, with a "
        f"backward pass of its own): {step['loss'] * 1e3:.3f} ms = {share:.2f}% of the "
        f"step; fastest steps, RMLC against BCE: {marginal:+.1f}%.",
    ]
    if "gpu_loss" in step:
        lines.append(
            f"GPU time (profiler, kernels summed): the RMLC loss {step['gpu_loss'] * 1e6:.1f} "
            f"us of a {step['gpu_step'] * 1e3:.3f} ms step = "
            f"**{100 * step['gpu_loss'] / step['gpu_step']:.2f}%**."
        )
    lines.append("")
    if kernels:
        lines += [
            "Kernels of the sampled RMLC loss at (256, 1000) by positives per image, forward + "
            'backward in ms (minimum over rounds); `kernel="auto"` takes fused up to '
            f"{F._FUSED_POSITIVES_PER_SAMPLE}:",
            "",
            "| positives / image | fused | pairs | sorted |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['positives']} | {r['fused'] * 1e3:.2f} | {r['pairs'] * 1e3:.2f} | "
            f"{r['sorted'] * 1e3:.2f} |"
            for r in kernels
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--known-only", action="store_true", help="only the known=None vs all-known mask table"
    )
    parser.add_argument(
        "--cpu-time", action="store_true", help="known-mask table: one thread, its CPU time"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    if args.cpu_time:
        torch.set_num_threads(1)
    known_rows = bench_known_mask(device, args.rounds, args.cpu_time)
    known = render_known(known_rows, device, args.rounds, args.cpu_time)
    torch.set_num_threads(threads)
    known += provenance_section(args.device)
    (args.out / f"losses-known-{device.type}.md").write_text(known)
    print(known)
    if args.known_only:
        return
    rows = bench_shapes(device, args.rounds)
    step = bench_training_step(device, args.rounds)
    kernels = bench_kernels(args.rounds) if device.type == "cpu" else []
    text = render(rows, step, device, kernels) + provenance_section(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"losses-{device.type}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
