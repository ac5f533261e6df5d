"""Two gloo processes, each propagating labels to its shard of the unlabeled samples (and,
with :func:`assert_two_labeled_shards_give_the_whole`, from its shard of the labeled ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import rmlc.propagation.chunks as chunks
from rmlc.propagation import propagate_labels
from tests.processes import process_context


def _unlabeled_shard(total: int, rank: int) -> torch.Tensor:
    """Rank ``rank``'s rows of ``total``, every other one, padded as a sampler pads."""
    padded = list(range(total)) + list(range((-total) % 2))
    return torch.tensor(padded[rank::2])


def _worker(rank: int, store: str, labeled, labels, unlabeled, out_dir: str, options) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        mine = _unlabeled_shard(unlabeled.shape[0], rank)
        result = propagate_labels(labeled, labels, unlabeled[mine], shard_indices=mine, **options)
        torch.save({"rows": mine, "result": result}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _labeled_worker(rank: int, store: str, cases: list[dict], out_dir: str) -> None:
    """Every case in turn, from this rank's shard of the labeled rows and of the unlabeled."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        for number, case in enumerate(cases):
            chunks.LABELED_CHUNK_BYTES = case["chunk_bytes"]
            labeled_rows = torch.tensor(case["labeled_rows"][rank], dtype=torch.int64)
            mine = _unlabeled_shard(case["unlabeled"].shape[0], rank)
            result = propagate_labels(
                case["labeled"][labeled_rows],
                case["labels"][labeled_rows],
                case["unlabeled"][mine],
                shard_indices=mine,
                labeled_shard_indices=case["ids"][labeled_rows],
                **case["options"],
            )
            torch.save({"rows": mine, "result": result}, Path(out_dir) / f"{number}-{rank}.pt")
    finally:
        dist.destroy_process_group()


def _run_two(target, args: tuple) -> None:
    """``target(rank, *args)`` in two spawned processes; both must succeed."""
    context = process_context()
    processes = [context.Process(target=target, args=(rank, *args)) for rank in (0, 1)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.terminate()
    assert [process.exitcode for process in processes] == [0, 0]


def assert_two_shards_give_the_whole(
    tmp_path: Path, labeled, labels, unlabeled, **options: Any
) -> None:
    """Every row and the temperature of the 2 shards equal one process's result."""
    whole = propagate_labels(labeled, labels, unlabeled, **options)
    _run_two(_worker, (str(tmp_path / "store"), labeled, labels, unlabeled, str(tmp_path), options))
    for rank in (0, 1):
        saved = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        rows, result = saved["rows"], saved["result"]
        assert result.t == whole.t
        for name in ("labels", "weights", "neighbors", "distances"):
            assert torch.equal(getattr(result, name), getattr(whole, name)[rows]), name


def assert_two_labeled_shards_give_the_whole(tmp_path: Path, cases: list[dict]) -> None:
    """Both sides sharded over 2 processes, for each case: every row and the temperature
    equal one process's result on the whole sets, its neighbours mapped through the ids.

    Each case is a dict: ``labeled`` ``(l, d)``, ``labels`` ``(l, ...)``, ``unlabeled``
    ``(u, d)`` tensors; ``ids`` ``(l,)`` the labeled rows' ids; ``labeled_rows``, the rows
    of rank 0 and of rank 1 (repeats allowed); ``chunk_bytes``, the labeled chunk's bytes;
    ``options`` for :func:`propagate_labels`.
    """
    _run_two(_labeled_worker, (str(tmp_path / "store"), cases, str(tmp_path)))
    for number, case in enumerate(cases):
        whole = propagate_labels(
            case["labeled"], case["labels"], case["unlabeled"], **case["options"]
        )
        expected = {
            "labels": whole.labels,
            "weights": whole.weights,
            "neighbors": case["ids"][whole.neighbors],
            "distances": whole.distances,
        }
        for rank in (0, 1):
            saved = torch.load(tmp_path / f"{number}-{rank}.pt", weights_only=False)
            rows, result = saved["rows"], saved["result"]
            assert result.t == whole.t, (number, rank)
            for name, value in expected.items():
                assert torch.equal(getattr(result, name), value[rows]), (number, rank, name)


def _failing_worker(rank: int, store: str, out_dir: str) -> None:
    """Rank 1's labeled shard holds a NaN; each rank writes down the error it raised."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        labeled = torch.randn(6, 3)
        if rank == 1:
            labeled[2, 1] = float("nan")
        try:
            propagate_labels(
                labeled,
                torch.arange(6),
                torch.randn(4, 3),
                shard_indices=torch.arange(4) + 4 * rank,
                labeled_shard_indices=torch.arange(6) + 6 * rank,
            )
        except ValueError as error:
            (Path(out_dir) / f"error{rank}.txt").write_text(str(error))
    finally:
        dist.destroy_process_group()


def errors_when_one_process_has_bad_input(tmp_path: Path) -> list[str]:
    """Both ranks' errors when rank 1's input is bad (a process that waited forever in a
    collective would be stopped after 120 s and fail the run instead)."""
    _run_two(_failing_worker, (str(tmp_path / "store"), str(tmp_path)))
    return [(tmp_path / f"error{rank}.txt").read_text() for rank in (0, 1)]
