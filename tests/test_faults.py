"""Faults and interruptions: nothing is lost and resumed runs end where they would have.

- SIGKILL in the middle of a step, then ``--resume``: the same final weights as an
  uninterrupted run.
- A checkpoint write interrupted at any point leaves the previous checkpoint intact.
- A full disk while writing a checkpoint or results: a clear error, previous files intact.
- Ctrl-C (SIGINT) or SIGTERM: the step in progress finishes, a resumable checkpoint is
  saved, and the exit code is 128 + the signal number.
- Under torchrun, a crashed rank makes the whole job exit with a message naming it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rmlc.atomic import WriteError, atomic_write_text
from rmlc.cli import main
from rmlc.train.checkpoint import atomic_save, load_checkpoint
from tests.train.conftest import tiny_config, write_mosaic_table

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    return {
        "root": folder,
        "train": write_mosaic_table(folder, "train", 80, seed=4),
        "test": write_mosaic_table(folder, "test", 16, seed=5),
    }


def train_command(tables, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rmlc",
        "train",
        "--train",
        str(tables["train"]),
        "--test",
        str(tables["test"]),
        "--image-root",
        str(tables["root"]),
        "--width",
        "4",
        "--image-size",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "0.01",
        "--no-progress",
        "--no-tensorboard",
        "--out",
        str(out),
        *extra,
    ]


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "last.pt")["model"]


def final_metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def assert_same_run(expected: tuple[dict, dict], out: Path) -> None:
    """Bit-identical final weights and identical test metrics."""
    assert_same_weights(expected[0], final_weights(out))
    assert final_metrics(out)["test"] == expected[1]["test"]


def assert_same_weights(a: dict, b: dict) -> None:
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=0, atol=0)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread, as the commands run in their own processes (``ENV``): the
    weights of runs compared bit for bit must come from the same order of sums."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_here(command: list[str]) -> tuple[int, str]:
    """``rmlc train`` called in this process (what needs no process of its own: a run
    nothing interrupts, a resumption): its exit code and what it printed."""
    printed = io.StringIO()
    with one_thread(), contextlib.redirect_stdout(printed):
        code = main(command[3:])  # after "python -m rmlc"
    return code, printed.getvalue()


@pytest.fixture(scope="module")
def straight(tables, tmp_path_factory) -> tuple[dict[str, torch.Tensor], dict]:
    """The final weights and test metrics of the same run, never interrupted."""
    out = tmp_path_factory.mktemp("straight")
    code, printed = train_here(train_command(tables, out))
    assert code == 0, printed
    return final_weights(out), final_metrics(out)


def resume_here(command: list[str], straight: tuple[dict, dict], out: Path) -> None:
    """``command --resume`` completes the run to the uninterrupted run's weights."""
    code, printed = train_here([*command, "--resume"])
    assert code == 0, printed
    assert_same_run(straight, out)


# Where a signal lands, decided by a hook in the process itself (never by a sleep): each
# patches one function of the real command to signal its own process on entry (under
# torchrun, only the process of one rank: RANK, unset outside torchrun, is read as 0).
SIGNAL_HOOKS = {
    "before training": ("rmlc.train.launch", "build_training_data", None),
    "during step 6": ("rmlc.train.trainer", "Trainer.step", 6),
    "during step 13": ("rmlc.train.trainer", "Trainer.step", 13),
    "during the final evaluation": ("rmlc.train.trainer", "Trainer._finish", None),
    "after training": ("rmlc.cli.train", "format_metrics", None),
}
HOOK_PROGRAM = """
import os, sys, importlib
module_name, attribute, at_call, number, rank = sys.argv[1:6]
module = importlib.import_module(module_name)
owner_name, _, name = attribute.rpartition(".")
owner = getattr(module, owner_name) if owner_name else module
original = getattr(owner, name)
calls = [0]
def hooked(*args, **kwargs):
    calls[0] += 1
    here = rank == "any" or os.environ.get("RANK", "0") == rank
    if here and (at_call == "None" or calls[0] == int(at_call)):
        os.kill(os.getpid(), int(number))
    return original(*args, **kwargs)
setattr(owner, name, hooked)
from rmlc.cli import main
sys.exit(main(sys.argv[6:]))
"""


def hook_arguments(moment: str, number: int, rank: str = "any") -> list[str]:
    """The hook program's arguments before the command's: signal ``number`` at ``moment``
    in the process of ``rank`` (any process by default)."""
    module, attribute, at_call = SIGNAL_HOOKS[moment]
    return [module, attribute, str(at_call), str(int(number)), rank]


def hooked_command(moment: str, number: int, command: list[str]) -> list[str]:
    return [
        sys.executable,
        "-c",
        HOOK_PROGRAM,
        *hook_arguments(moment, number),
        *command[3:],  # after "python -m rmlc"
    ]


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_step_then_resume(tables, straight, tmp_path) -> None:
    """Killed as step 13 (of 18, in the second epoch) starts, with a checkpoint after every
    step: the last checkpoint is step 12's and ``--resume`` ends on the same weights."""
    command = train_command(tables, tmp_path / "b", "--checkpoint-every-steps", "1")
    killed = subprocess.run(
        hooked_command("during step 13", signal.SIGKILL, command),
        env=ENV,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    killed_at = load_checkpoint(tmp_path / "b" / "last.pt")["position"]
    assert (killed_at["global_step"], killed_at["epoch"]) == (12, 1)
    resume_here(command, straight, tmp_path / "b")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("moment", "number"),
    [
        ("before training", signal.SIGINT),
        ("during step 6", signal.SIGINT),
        ("during step 6", signal.SIGTERM),
        ("during the final evaluation", signal.SIGINT),
        ("after training", signal.SIGTERM),
    ],
)
def test_stop_signal_at_any_moment_ends_cleanly(tables, straight, tmp_path, moment, number):
    """Ctrl-C or SIGTERM at a chosen moment of ``rmlc train``: during training, a clean exit
    with 128 + the signal number and a checkpoint that resumes to the same weights; during
    the final evaluation or after it, the run completes and exits 0."""
    command = train_command(tables, tmp_path / "b", "--checkpoint-every-steps", "4")
    process = subprocess.run(
        hooked_command(moment, number, command),
        env=ENV,
        timeout=300,
        capture_output=True,
        text=True,
    )
    if moment in ("during the final evaluation", "after training"):
        assert process.returncode == 0, process.stderr
        assert "the run is complete" in process.stdout
        assert_same_run(straight, tmp_path / "b")
        return
    assert process.returncode == 128 + number, process.stderr
    assert "checkpoint saved" in process.stderr and "resume with --resume" in process.stderr
    stopped_at = load_checkpoint(tmp_path / "b" / "last.pt")["position"]["global_step"]
    assert stopped_at == (0 if moment == "before training" else 6)
    resume_here(command, straight, tmp_path / "b")


@pytest.mark.parametrize("failure", ["open", "write", "fsync", "rename", "interrupt"])
def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch, failure):
    path = tmp_path / "last.pt"
    atomic_save({"model": {"w": torch.ones(3)}, "step": 1}, path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        if failure == "interrupt":
            raise KeyboardInterrupt  # a kill in the middle of the write
        raise OSError(errno.EIO, "input/output error")

    if failure == "open":
        monkeypatch.setattr("tempfile.mkstemp", broken)
    elif failure == "write":
        monkeypatch.setattr(torch, "save", lambda obj, stream: (stream.write(b"half"), broken()))
    elif failure == "fsync":
        monkeypatch.setattr(os, "fsync", broken)
    elif failure == "rename":
        monkeypatch.setattr(os, "replace", broken)
    else:
        monkeypatch.setattr(torch, "save", lambda obj, stream: (stream.write(b"half"), broken()))
    expected = KeyboardInterrupt if failure == "interrupt" else WriteError
    with pytest.raises(expected):
        atomic_save({"model": {"w": torch.zeros(3)}, "step": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_full_disk_is_reported_and_previous_files_survive(tmp_path, monkeypatch) -> None:
    atomic_write_text('{"mAP": 1}', tmp_path / "metrics.json")
    atomic_save({"model": {}, "step": 1}, tmp_path / "last.pt")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteError, match=r"metrics.json: the disk is full; the previous file"):
        atomic_write_text('{"mAP": 2}', tmp_path / "metrics.json")
    with pytest.raises(WriteError, match=r"last.pt: the disk is full"):
        atomic_save({"model": {}, "step": 2}, tmp_path / "last.pt")
    monkeypatch.undo()
    assert (tmp_path / "metrics.json").read_text() == '{"mAP": 1}'
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1


def test_full_disk_during_training_stops_with_a_resumable_checkpoint(tables, tmp_path, monkeypatch):
    from rmlc.train import run

    config = tiny_config(tables, tmp_path / "run", epochs=2)
    original_fsync, calls = os.fsync, []

    def fsync(descriptor):
        calls.append(1)
        if len(calls) > 3:  # config, best.pt and last.pt of epoch 1 get through
            raise OSError(errno.ENOSPC, "No space left on device")
        return original_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(WriteError, match="the disk is full"):
        run(config)
    monkeypatch.undo()
    saved = load_checkpoint(tmp_path / "run" / "last.pt")
    assert saved["position"]["epoch"] >= 1
    resumed = run(tiny_config(tables, tmp_path / "run", epochs=2, resume=True))
    assert "mAP" in resumed


@pytest.mark.slow
def test_a_crashed_rank_stops_the_whole_torchrun_job(tables, tmp_path) -> None:
    """Rank 1 killed as its sixth step starts: torchrun ends rank 0 too (blocked in the
    all-reduce of that step) and the job exits non-zero with a message naming the rank."""
    program = tmp_path / "hooked.py"
    program.write_text(HOOK_PROGRAM)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        str(program),
        *hook_arguments("during step 6", signal.SIGKILL, rank="1"),
        *train_command(tables, tmp_path / "run")[3:],
        "--dist-timeout",
        "60",
    ]
    process = subprocess.run(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180
    )
    output = process.stdout
    assert process.returncode != 0, output[-2000:]
    assert "rank" in output.lower() and ("exitcode" in output or "Signal 9" in output), output[
        -2000:
    ]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_results_files_get_the_usual_permissions(tmp_path) -> None:
    """Written through a temporary file, results still get what open() would give them
    (0o666 less the umask), not mkstemp's private 0o600."""
    previous = os.umask(0o022)
    try:
        atomic_write_text("{}", tmp_path / "metrics.json")
        assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        atomic_write_text("{}", tmp_path / "metrics.json")  # replacing an existing file too
        assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(previous)
