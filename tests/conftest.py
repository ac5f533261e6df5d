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


def _patch_builtins_from_a_list() -> None:
    """Triton's interpreter, at every call of a ``@triton.jit`` function (``tl.sum``,
    ``tl.min``, ... several times per loop step of the fused kernel), lists every member of
    ``triton.language`` with ``inspect.getmembers`` to wrap its builtins: a third to half of
    an interpreted kernel's time. Here the builtins of a module are listed once and wrapped
    where the module still holds them, as before (a wrapped one is no longer a builtin):
    the same patches at a fraction of the cost. Left as it is if Triton's interpreter is
    off or no longer has the function this replaces."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return
    try:
        import inspect

        from triton.runtime import interpreter
    except ImportError:
        return
    original = getattr(interpreter, "_patch_builtin", None)
    patch_attr = getattr(interpreter, "_patch_attr", None)
    if original is None or patch_attr is None:
        return
    is_builtin = interpreter.tl.core.is_builtin
    builtins: dict[int, list[tuple[str, object]]] = {}

    def patch_builtin(pkg, builder, scope) -> None:
        members = builtins.get(id(pkg))
        if members is None:
            members = [(n, m) for n, m in inspect.getmembers(pkg) if is_builtin(m)]
            builtins[id(pkg)] = members
        for name, member in members:
            if getattr(pkg, name, None) is member:
                patch_attr(pkg, name, member, builder, scope)

    interpreter._patch_builtin = patch_builtin


_patch_builtins_from_a_list()


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
