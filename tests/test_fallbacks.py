"""No silent fallbacks: what runs instead of a missing optional piece is said once, with its
cost, and the command line shows the traceback of errors rmlc did not raise on purpose."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rmlc import cli
from rmlc.losses import build_loss, functional, fused_triton


@pytest.mark.slow  # a fresh Python process
def test_without_numba_importing_the_losses_warns_and_names_the_cost() -> None:
    code = (
        "import sys, warnings\n"
        "sys.modules['numba'] = None\n"  # what a platform without numba sees
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import rmlc.losses.functional as F\n"
        "assert F.fused_kernel is None\n"
        "print('|'.join(str(w.message) for w in caught))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "numba could not be imported" in result.stdout
    assert "torch kernels instead, about 2-3x slower" in result.stdout


def test_without_triton_a_cuda_loss_warns_once(monkeypatch) -> None:
    monkeypatch.setattr(fused_triton, "triton", None)
    monkeypatch.setattr(fused_triton, "_IMPORT_ERROR", "ImportError: no module named triton")
    fused_triton.supports.cache_clear()
    fused_triton.warn_unavailable.cache_clear()
    try:
        device = torch.device("cuda")  # never touched: without Triton nothing asks the device
        with pytest.warns(RuntimeWarning, match="Triton could not be imported .*no module"):
            assert functional.choose_cuda_kernel(96, 80, device) == "dense"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert functional.choose_cuda_kernel(96, 80, device) == "dense"  # once only
    finally:
        fused_triton.supports.cache_clear()
        fused_triton.warn_unavailable.cache_clear()


@pytest.mark.parametrize(
    ("asked", "said"), [(None, "TensorBoard logging is off"), (True, "was asked for")]
)
def test_without_tensorboard_training_says_so_in_one_log_line(
    monkeypatch, tmp_path, asked, said
) -> None:
    """By default (None) or asked for (True), a missing tensorboard package is one line of
    train.log saying how to turn it on, never a raw Python warning; False says nothing."""
    from rmlc.train.run_log import RunLog

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    log = RunLog(tmp_path, tensorboard=asked, echo=False, enabled=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log.open()
    assert log.writer is None
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert len(lines) == 1 and said in lines[0]
    assert "pip install tensorboard turns it on" in lines[0] and "--no-tensorboard" in lines[0]
    log.epoch({"epoch": 1, "train_loss": 0.5})  # log.csv and train.log are written as always
    assert (tmp_path / "log.csv").read_text() == "epoch,train_loss\n1,0.5\n"
    assert (tmp_path / "train.log").read_text().splitlines()[1:] == ["epoch 1: train_loss 0.5"]
    quiet = RunLog(tmp_path / "off", tensorboard=False, echo=False, enabled=True)
    quiet.open()
    assert not (tmp_path / "off").exists()


def test_with_tensorboard_installed_it_is_on_by_default(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from rmlc.train.run_log import RunLog

    log = RunLog(tmp_path, tensorboard=None, echo=False, enabled=True)
    log.open()
    try:
        assert log.writer is not None and (tmp_path / "tensorboard").is_dir()
    finally:
        log.close()
    assert not (tmp_path / "train.log").exists()


@pytest.mark.parametrize(
    ("raise_it", "on_purpose"),
    [
        (lambda: build_loss("no-such-loss"), True),
        (lambda: Path("/no/such/folder/file.csv").read_text(), True),  # the OS names it
        (lambda: np.zeros(3).reshape(2, 2), False),  # a bug: numpy's error, not ours
        (lambda: {}["missing"], False),
    ],
    ids=["rmlc-check", "missing-file", "library-error", "key-error"],
)
def test_the_command_line_keeps_one_line_messages_for_rmlc_errors_only(
    raise_it, on_purpose, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("RMLC_DEBUG", raising=False)
    parser = cli.build_parser()
    args = parser.parse_args(["evaluate", "--checkpoint", "x.pt"])
    args.handler = lambda _: raise_it()
    monkeypatch.setattr(cli, "build_parser", lambda: SimpleNamespace(parse_args=lambda _: args))
    if on_purpose:
        assert cli.main([]) == 2
        assert capsys.readouterr().err.startswith("rmlc evaluate: error: ")
    else:
        with pytest.raises((ValueError, KeyError)):
            cli.main([])
