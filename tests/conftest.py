"""Shared test configuration: make ``tests/reference.py`` importable as ``reference``.

Without a GPU, Triton's interpreter runs the fused GPU kernel on CPU tensors, so that its
tests run everywhere; Triton reads the switch when first imported, hence here.
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
