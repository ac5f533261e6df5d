"""rmlc installs from a wheel and works outside the source checkout: its reproduction
specs and embedded data ship as package data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_version() -> tuple[int, ...]:
    try:
        from importlib.metadata import version

        return tuple(int(part) for part in version("setuptools").split(".")[:2])
    except (ImportError, ValueError):
        return (0,)


@pytest.mark.slow
def test_a_wheel_installed_into_a_clean_folder_reproduces(tmp_path) -> None:
    wheels = tmp_path / "wheels"
    # With setuptools >= 77 here the build runs offline; else pip fetches one from PyPI.
    offline = ["--no-build-isolation"] if _setuptools_version() >= (77,) else []
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            *offline,
            "--wheel-dir",
            str(wheels),
            "--quiet",
        ],
        check=True,
        timeout=600,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("rmlc-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            str(wheel),
            "--no-deps",
            "--target",
            str(site),
            "--quiet",
        ],
        check=True,
        timeout=600,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import rmlc, rmlc.experiments as e\n"
        f"assert rmlc.__file__.startswith({str(site)!r}), rmlc.__file__\n"
        "assert all(e.load_spec(name).methods for name in e.EXPERIMENTS)\n"
        # 100 training and 200 test mosaics, as tests/test_experiments.py's quick runs: the
        # specs and the data still come from the wheel
        "import rmlc.experiments.reproduction as r, rmlc.train.sources.fashion_mosaic as m\n"
        "values, arrays = r._config_values, m._arrays\n"
        "r._config_values = lambda *a: {**values(*a), 'subsample': 0.025}\n"
        "m._arrays = lambda split, source: tuple(a[:200] if split == 'test' else a\n"
        "                                        for a in arrays(split, source))\n"
        "from rmlc.cli import main\n"
        "sys.exit(main(['reproduce', 'table3', '--quick', '--out', 'results']))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = (work / "results" / "table3-quick.md").read_text()
    assert "rmlc reproduce table3 --quick" in report
