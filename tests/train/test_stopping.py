"""The stop request: signals are recorded, not acted on, until the training loop polls."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
import torch

from rmlc.train.stopping import StopRequest


def _sleep_forever() -> None:
    while True:
        time.sleep(0.05)


def test_first_signal_is_recorded_and_a_second_ctrl_c_aborts() -> None:
    before = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        assert not stop.requested and not stop.agreed(torch.device("cpu"))
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.signal_number == signal.SIGINT
        assert stop.agreed(torch.device("cpu")) and stop.exit_code == 130
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_gives_its_exit_code() -> None:
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
    assert stop.signal_number == signal.SIGTERM and stop.exit_code == 143


def test_forked_workers_ignore_ctrl_c_and_die_on_sigterm() -> None:
    """Data-loader workers inherit the handler: Ctrl-C is the main process's to handle."""
    with StopRequest() as stop:
        worker = multiprocessing.get_context("fork").Process(target=_sleep_forever)
        worker.start()
        try:
            time.sleep(0.2)
            os.kill(worker.pid, signal.SIGINT)
            time.sleep(0.3)
            assert worker.is_alive()
            os.kill(worker.pid, signal.SIGTERM)
            worker.join(10)
            assert worker.exitcode == -signal.SIGTERM
        finally:
            if worker.is_alive():
                worker.kill()
        assert not stop.requested  # the worker's signals were not the main process's


def test_nested_requests_hand_a_pending_signal_in_and_out() -> None:
    """The command's outer request (never restored) passes a signal that came before
    training to the trainer's, and gets back one that came during the final phase."""
    import os
    import signal

    from rmlc.train.stopping import StopRequest

    previous = signal.getsignal(signal.SIGINT)
    try:
        with StopRequest(restore=False) as outer:
            os.kill(os.getpid(), signal.SIGTERM)
            assert outer.signal_number == signal.SIGTERM
            with StopRequest() as inner:
                assert inner.requested and inner.signal_number == signal.SIGTERM
            assert signal.getsignal(signal.SIGINT) == outer._handle  # restored to the outer
        assert signal.getsignal(signal.SIGINT) == outer._handle  # restore=False: kept
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fresh = StopRequest(restore=False)
        with fresh:
            with StopRequest() as inner:
                os.kill(os.getpid(), signal.SIGINT)
                assert inner.signal_number == signal.SIGINT and not fresh.requested
            assert fresh.signal_number == signal.SIGINT  # handed back on exit
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
