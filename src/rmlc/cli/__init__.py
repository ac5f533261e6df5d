"""The ``rmlc`` command line: argument parsing only; the library does the work.

Subcommands: ``train``, ``evaluate``, ``predict``, ``extract-features``, ``fit-features``,
``corrupt``, ``shard``, ``data-stats``, ``pretrain``, ``reproduce`` and ``export``. Every
training option is a flag named after its :class:`~rmlc.train.config.TrainConfig` key
(``--batch-size`` for ``batch_size``); ``--config FILE.yaml`` sets many at once and flags
override it.
"""

from __future__ import annotations

import argparse
import linecache
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from rmlc.cli.common import format_metrics
from rmlc.cli.data import add_corrupt_command, add_data_stats_command, add_shard_command
from rmlc.cli.train import (
    add_fit_features_command,
    add_pretrain_command,
    add_reproduce_command,
    add_train_command,
)
from rmlc.cli.trained import (
    add_audit_command,
    add_evaluate_command,
    add_export_command,
    add_extract_features_command,
    add_predict_command,
)

__all__ = ["build_parser", "format_metrics", "main"]

_PACKAGE_FOLDER = Path(__file__).resolve().parents[1]  # rmlc's own source
_PYTHON_WARNING_FORMAT = warnings.formatwarning


def build_parser() -> argparse.ArgumentParser:
    """The ``rmlc`` parser: one sub-command per task, each with its handler as a default."""
    parser = argparse.ArgumentParser(
        prog="rmlc",
        description="Robust, semi-supervised multi-label image classification (RML-CNN).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_train_command(commands)
    add_evaluate_command(commands)
    add_predict_command(commands)
    add_extract_features_command(commands)
    add_fit_features_command(commands)
    add_corrupt_command(commands)
    add_shard_command(commands)
    add_data_stats_command(commands)
    add_pretrain_command(commands)
    add_reproduce_command(commands)
    add_export_command(commands)
    add_audit_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rmlc`` command."""
    args = build_parser().parse_args(argv)
    formatting = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # no file path or source line on the terminal
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError, ArithmeticError, ImportError, RuntimeError) as error:
        if os.environ.get("RMLC_DEBUG") or not _raised_on_purpose(error):
            raise  # a bug: its traceback is what helps
        print(f"rmlc {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatting


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """A warning as the command shows it: ``rmlc: warning: MESSAGE`` (with ``RMLC_DEBUG``
    set, Python's form, with the file and line that warned)."""
    if os.environ.get("RMLC_DEBUG"):
        return _PYTHON_WARNING_FORMAT(message, category, filename, lineno, line)
    return f"rmlc: warning: {message}\n"


def _raised_on_purpose(error: BaseException) -> bool:
    """Whether ``error`` is one rmlc raises on purpose, to be shown as one line: raised by
    a ``raise`` statement in rmlc's own source (its checks of input, files and settings), or
    an operating-system error naming a file, or scikit-learn's check of an estimator's
    parameters. Anything else is a bug, shown with its traceback."""
    if isinstance(error, OSError) and error.filename is not None:
        return True
    if "sklearn" in sys.modules:  # loaded by the commands that use an estimator
        from sklearn.utils._param_validation import InvalidParameterError

        if isinstance(error, InvalidParameterError):
            return True
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    source = Path(frame.tb_frame.f_code.co_filename).resolve()
    if not source.is_relative_to(_PACKAGE_FOLDER):
        return False
    return linecache.getline(str(source), frame.tb_lineno).lstrip().startswith("raise")
