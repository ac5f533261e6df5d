"""Graceful stops: Ctrl-C (SIGINT) or SIGTERM let the current step finish, then training
saves a resumable checkpoint and exits; a second Ctrl-C aborts at once.

A signal handler only records the request; the trainer polls it between steps, so a
checkpoint is never taken in the middle of an optimizer update or with a random state that
has run ahead of the saved position (which would break exact resumes). Under ``torchrun``
every process polls at the same steps and the processes agree with one all-reduce, so they
all stop after the same step.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

import torch
import torch.distributed as dist

__all__ = ["StopRequest"]

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Context manager that turns SIGINT/SIGTERM into a request polled by the training loop.

    Inside the context the first signal sets :attr:`signal_number`; a second SIGINT raises
    :class:`KeyboardInterrupt` (abort without saving). Forked data-loader workers inherit
    the handler: they ignore SIGINT (the main process shuts them down) and die on SIGTERM.
    Outside the main thread no handler can be installed and signals keep their defaults.

    Requests nest: a StopRequest entered inside another takes over a request the outer one
    already holds, and hands its own back on exit. The ``rmlc train`` command holds one for
    its whole life (``restore=False``), so that a signal before training starts is honoured
    when it starts, and one after training has finished lets the command end cleanly.

    Args:
        restore: put the previous handlers back on exit (False: keep recording signals
            until the process ends).
        action: what the first signal's message says will happen.
    """

    def __init__(
        self,
        restore: bool = True,
        action: str = "finishing the current step, then saving a checkpoint",
    ) -> None:
        self.signal_number: int | None = None
        self.restore, self.action = restore, action
        self._owner = os.getpid()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in _HANDLED:
                self._previous[number] = signal.signal(number, self._handle)
            outer = self._outer()
            if outer is not None and self.signal_number is None:
                self.signal_number = outer.signal_number
        return self

    def __exit__(self, *exc_info: object) -> None:
        outer = self._outer()
        if outer is not None and outer.signal_number is None:
            outer.signal_number = self.signal_number
        if self.restore:
            for number, handler in self._previous.items():
                signal.signal(number, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _outer(self) -> StopRequest | None:
        """The StopRequest whose handler this one replaced, if any."""
        handler = self._previous.get(signal.SIGINT)
        owner = getattr(handler, "__self__", None)
        return owner if isinstance(owner, StopRequest) else None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        del frame
        if os.getpid() != self._owner:  # a forked data-loader worker
            if number == signal.SIGTERM:
                signal.signal(number, signal.SIG_DFL)
                os.kill(os.getpid(), number)
            return
        if self.signal_number is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_number = number
        print(
            f"rmlc: {signal.Signals(number).name} received: {self.action} "
            "(press Ctrl-C again to abort without saving)",
            file=sys.stderr,
            flush=True,
        )

    @property
    def requested(self) -> bool:
        """Whether this process received a stop signal."""
        return self.signal_number is not None

    def agreed(self, device: torch.device) -> bool:
        """Whether any process received a stop signal (then all adopt its number).

        A collective when distributed: every process must call it at the same point.
        """
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return self.requested
        number = torch.tensor([self.signal_number or 0], device=device)
        dist.all_reduce(number, op=dist.ReduceOp.MAX)
        # Decide on the reduced value only: a signal landing after the all-reduce must not
        # make this process stop while the others go on (it is seen at the next agreement).
        agreed = int(number.item())
        if agreed and self.signal_number is None:
            self.signal_number = agreed
        return agreed > 0

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C)."""
        return 128 + (self.signal_number or signal.SIGINT)
