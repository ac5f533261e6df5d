"""Two processes with gloo on CPU train to the same metrics as one process on the same batch."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from tests.processes import process_context
from tests.train.conftest import tiny_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker(rank: int, world_size: int, port: int, config) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    import torch

    torch.set_num_threads(1)
    from rmlc.train import TrainingInterrupted, run

    try:
        run(config)
    except TrainingInterrupted as error:
        raise SystemExit(error.exit_code) from None


def train_one_and_two_processes(mosaic_tables, tmp_path, settings: dict) -> None:
    """The same config trained by one process (``tmp_path/one``) and by two gloo processes
    (``tmp_path/two``), all three at once."""
    single = tiny_config(mosaic_tables, tmp_path / "one", **settings)
    double = tiny_config(mosaic_tables, tmp_path / "two", **settings)
    context = process_context()
    port = free_port()
    processes = [context.Process(target=worker, args=(rank, 2, port, double)) for rank in range(2)]
    processes.append(context.Process(target=worker, args=(0, 1, free_port(), single)))
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
        assert process.exitcode == 0


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(mosaic_tables, tmp_path) -> None:
    common = {
        "norm": "group",  # batch statistics would differ between 8-image and 16-image batches
        "augment": False,
        "loss": "rmlc",
        "loss_params": {"rank": "exact"},
        "epochs": 2,
        "batch_size": 16,
    }
    train_one_and_two_processes(mosaic_tables, tmp_path, common)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    # Same samples per step; only the order of floating-point sums differs (the all-reduce
    # averages two 8-image means, one process takes one 16-image mean).
    for key in ("mAP", "P-C", "R-C", "F1-C", "P-O", "R-O", "F1-O"):
        assert two[key] == pytest.approx(one[key], abs=0.05), key
    assert one["best_epoch"] == two["best_epoch"]
    import torch

    weights_one = torch.load(tmp_path / "one" / "last.pt", weights_only=False)["model"]
    weights_two = torch.load(tmp_path / "two" / "last.pt", weights_only=False)["model"]
    for name, value in weights_one.items():
        torch.testing.assert_close(weights_two[name], value, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_a_signal_to_one_process_stops_both_after_the_same_step(mosaic_tables, tmp_path) -> None:
    """SIGTERM reaches rank 1 only: the processes agree, stop together, rank 0 saves."""
    config = tiny_config(mosaic_tables, tmp_path / "two", epochs=40, batch_size=16)
    context = process_context()
    port = free_port()
    processes = [context.Process(target=worker, args=(rank, 2, port, config)) for rank in range(2)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 120
    while not (tmp_path / "two" / "last.pt").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(processes[1].pid, signal.SIGTERM)
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [143, 143]
    import torch

    position = torch.load(tmp_path / "two" / "last.pt", weights_only=False)["position"]
    assert 1 <= position["epoch"] < 40 and position["step_in_epoch"] == 0


@pytest.mark.slow
def test_two_processes_propagate_the_labels_one_process_does(mosaic_tables, tmp_path) -> None:
    """The label refresh under torchrun: each process searches its shard of the unlabeled
    images; after sharing, both hold the propagated labels and weights one process finds
    (a refresh at the first epoch, from the same seeded weights)."""
    common = {
        "norm": "group",
        "augment": False,
        "epochs": 1,
        "batch_size": 16,
        "semi_supervised": True,
        "unlabeled": str(mosaic_tables["unlabeled"]),
        "warmup_epochs": 0,
        "refresh_every": 5,
    }
    train_one_and_two_processes(mosaic_tables, tmp_path, common)
    import torch

    one = torch.load(tmp_path / "one" / "last.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=False)
    assert one["propagation_epoch"] == two["propagation_epoch"] == 0
    unlabeled = one["sample_weights"] < 1  # propagated rows: weights in (0, 1)
    assert int(unlabeled.sum()) >= 60
    torch.testing.assert_close(two["targets"], one["targets"], rtol=0, atol=0)
    torch.testing.assert_close(two["sample_weights"], one["sample_weights"], rtol=1e-6, atol=0)
