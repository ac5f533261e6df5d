"""Running the ``rmlc`` command in a fresh process, as a user would."""

from __future__ import annotations

import subprocess
import sys


def run_rmlc(*arguments: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m rmlc ARGUMENTS...``, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "rmlc", *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
