"""rmlc.gather: the first row of each dataset index, as a literal loop finds it."""

from __future__ import annotations

import pytest
import torch

from rmlc.gather import first_per_index, gather_objects
from tests.processes import process_context


def test_first_row_of_each_index_in_index_order() -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        indices = torch.randint(
            0, 12, (int(torch.randint(1, 30, (1,), generator=generator)),), generator=generator
        )
        first: dict[int, int] = {}
        for position, index in enumerate(indices.tolist()):
            first.setdefault(index, position)
        expected = [first[index] for index in sorted(first)]
        assert first_per_index(indices).tolist() == expected


def test_one_process_gathers_its_own_object() -> None:
    assert gather_objects({"rows": 3}) == [{"rows": 3}]


def _gather_in_two_processes(rank: int, init_file: str, queue) -> None:
    import torch.distributed as dist

    from rmlc.gather import gather_rows

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        if rank == 0:  # rows of indices 4, 0, 2 (2 twice: a padded sampler)
            rows, indices = torch.tensor([[4.0, 40.0], [0.0, 0.0], [2.0, 20.0]]), [4, 0, 2]
        else:
            rows, indices = torch.tensor([[1.0, 10.0], [2.0, 20.0]]), [1, 2]
        queue.put((rank, *(part.tolist() for part in gather_rows(rows, torch.tensor(indices)))))
        empty = torch.empty(0) if rank == 0 else torch.tensor([[5.0, 50.0]])  # an empty shard
        gathered = gather_rows(empty, torch.tensor([5] * (rank == 1), dtype=torch.int64))
        queue.put((rank, *(part.tolist() for part in gathered)))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes start (spawn): seconds
def test_two_processes_gather_tensor_rows_once_per_index(tmp_path) -> None:
    """``gather_rows`` over two gloo processes: every rank gets every row once, ordered by
    index, as a literal merge of the two shards gives them; a rank with no rows joins."""
    context = process_context()
    queue = context.Queue()
    init_file = str(tmp_path / "init")
    processes = [
        context.Process(target=_gather_in_two_processes, args=(rank, init_file, queue))
        for rank in range(2)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in range(4)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    full = [result for result in results if len(result[2]) == 4]
    single = [result for result in results if len(result[2]) == 1]
    assert sorted(rank for rank, *_ in full) == [0, 1] == sorted(rank for rank, *_ in single)
    for _, rows, indices in full:
        assert indices == [0, 1, 2, 4]
        assert rows == [[0.0, 0.0], [1.0, 10.0], [2.0, 20.0], [4.0, 40.0]]
    for _, rows, indices in single:
        assert indices == [5] and rows == [[5.0, 50.0]]


def test_one_process_keeps_the_first_row_of_each_index() -> None:
    from rmlc.gather import gather_rows

    rows, indices = gather_rows(torch.tensor([[3.0], [1.0], [3.5]]), torch.tensor([3, 1, 3]))
    assert indices.tolist() == [1, 3] and rows.flatten().tolist() == [1.0, 3.0]
