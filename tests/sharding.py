"""Two gloo processes, each propagating labels to its shard of the unlabeled samples."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import torch

from rmlc.propagation import propagate_labels


def _worker(rank: int, store: str, labeled, labels, unlabeled, out_dir: str, options) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        total = unlabeled.shape[0]
        padded = list(range(total)) + list(range((-total) % 2))  # a sampler's padding
        mine = torch.tensor(padded[rank::2])
        result = propagate_labels(labeled, labels, unlabeled[mine], shard_indices=mine, **options)
        torch.save({"rows": mine, "result": result}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def assert_two_shards_give_the_whole(
    tmp_path: Path, labeled, labels, unlabeled, **options: Any
) -> None:
    """Every row and the temperature of the 2 shards equal one process's result."""
    whole = propagate_labels(labeled, labels, unlabeled, **options)
    context = multiprocessing.get_context("spawn")
    args = (str(tmp_path / "store"), labeled, labels, unlabeled, str(tmp_path), options)
    processes = [context.Process(target=_worker, args=(r, *args)) for r in (0, 1)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.terminate()
    assert [process.exitcode for process in processes] == [0, 0]
    for rank in (0, 1):
        saved = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        rows, result = saved["rows"], saved["result"]
        assert result.t == whole.t
        for name in ("labels", "weights", "neighbors", "distances"):
            assert torch.equal(getattr(result, name), getattr(whole, name)[rows]), name
