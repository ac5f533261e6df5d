"""The context the multi-process tests start their gloo processes from.

``spawn`` starts every process from scratch: each one imports torch again (seconds of CPU
per process, for every test). A ``forkserver`` imports torch and the modules the workers
use once, in one single-threaded server process, and forks each test process from it: the
processes still start clean (no thread, no state of the pytest process), without the
imports.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

PRELOAD = ["torch", "torch.distributed", "rmlc.metrics", "rmlc.propagation", "rmlc.train"]


def process_context() -> BaseContext:
    """A ``forkserver`` context whose server has ``PRELOAD`` imported (the first call of a
    pytest process starts it; later calls reuse it)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context
