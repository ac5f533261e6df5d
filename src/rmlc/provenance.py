"""Where a result came from: the commit, the versions of what computed it, the device.

Every results and benchmark file records :func:`provenance` so that a number can be traced
to the code and the machine that produced it.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["describe_device", "git_commit", "provenance", "provenance_markdown"]

_PACKAGES = ("rmlc", "torch", "torchvision", "numpy", "scikit-learn", "numba", "triton")


def git_commit(folder: Path | None = None) -> str:
    """The commit checked out at ``folder`` (this package's source by default), with
    ``-dirty`` when tracked files under ``folder`` differ from it (results being written
    elsewhere in the checkout do not count); ``"unknown"`` outside a git checkout."""
    folder = folder or Path(__file__).resolve().parent

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=folder, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def describe_device(device: str | None = None) -> str:
    """``"cpu: <processor>, N cores"`` or ``"cuda: <GPU name>"`` for the device used."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda"):
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    processor = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {processor}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def provenance(command: str, device: str | None = None) -> dict[str, Any]:
    """The commit, package versions, device, command and date of a result."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    versions["python"] = platform.python_version()
    return {
        "command": command,
        "commit": git_commit(),
        "versions": versions,
        "device": describe_device(device),
        "platform": f"{platform.system()} {platform.release()} ({sys.platform})",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def provenance_markdown(record: dict[str, Any]) -> list[str]:
    """Markdown lines of a :func:`provenance` record."""
    versions = ", ".join(f"{name} {version}" for name, version in record["versions"].items())
    return [
        f"- command: `{record['command']}`",
        f"- commit: `{record['commit']}`",
        f"- versions: {versions}",
        f"- device: {record['device']}",
        f"- date: {record['date']}",
    ]
