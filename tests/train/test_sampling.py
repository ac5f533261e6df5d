"""How an epoch's samples are shared out among processes."""

from __future__ import annotations


def test_every_process_gets_a_share_even_of_an_order_shorter_than_the_processes() -> None:
    """Padding repeats the order as often as needed: no process is left with nothing to
    evaluate (it would wait forever for the others' gathering)."""
    from rmlc.train.sampling import FixedOrder, ShardedSampler

    shares = [list(ShardedSampler(FixedOrder(1), rank, 4, 8)) for rank in range(4)]
    assert shares == [[0], [0], [0], [0]]
    shares = [list(ShardedSampler(FixedOrder(3), rank, 8, 8)) for rank in range(8)]
    assert sorted(index for share in shares for index in share) == [0, 0, 0, 1, 1, 1, 2, 2]
