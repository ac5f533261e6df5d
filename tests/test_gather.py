"""rmlc.gather: the first row of each dataset index, as a literal loop finds it."""

from __future__ import annotations

import torch

from rmlc.gather import first_per_index, gather_objects


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
