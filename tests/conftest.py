"""Shared test configuration: make ``tests/reference.py`` importable as ``reference``.

Without a GPU, Triton's interpreter runs the fused GPU kernel on CPU tensors, so that its
tests run everywhere; Triton reads the switch when first imported, hence here.

Under pytest-xdist each worker takes its share of the cores for torch's threads (and the
processes it starts, through ``OMP_NUM_THREADS``): ``-n 2`` on 2 cores would otherwise run
4 threads that wait on each other.
"""

import os
import signal
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _worker_threads() -> int | None:
    """Torch threads for this xdist worker: the cores shared out evenly (None outside xdist)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 1:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


if (_THREADS := _worker_threads()) is not None and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)
    torch.set_num_threads(_THREADS)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HANDLERS = {number: signal.getsignal(number) for number in _SIGNALS}  # the session's own


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    """``rmlc train`` keeps its SIGINT/SIGTERM handler for the process's life (a signal
    after training lets the command end cleanly); called in-process by a test or a fixture,
    that handler would collect the stop requests of later tests' runs: after each test, the
    session's handlers are put back."""
    yield
    for number, handler in _HANDLERS.items():
        signal.signal(number, handler)
