"""Learning-rate schedules as pure functions of training progress (nothing to checkpoint)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["SCHEDULES", "learning_rate"]

SCHEDULES = ("fixed", "multistep", "cosine")


def learning_rate(
    base: float,
    schedule: str,
    progress: float,
    step: int,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    warmup_steps: int = 0,
) -> float:
    """Learning rate at a point of training.

    Args:
        base: the initial learning rate.
        schedule: ``"fixed"``; ``"multistep"`` (multiplied by ``gamma`` at each milestone
            iteration, as the paper's 10k and 16k); ``"cosine"`` (to 0 at the end).
        progress: fraction of training done, in ``[0, 1]`` (for cosine).
        step: optimisation steps done (for milestones and warmup).
        warmup_steps: linear warmup from ``base / warmup_steps`` over this many steps.
    """
    if schedule == "fixed":
        rate = base
    elif schedule == "multistep":
        rate = base * gamma ** sum(step >= milestone for milestone in milestones)
    elif schedule == "cosine":
        rate = base * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    else:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
    if warmup_steps > 0 and step < warmup_steps:
        rate *= (step + 1) / warmup_steps
    return rate
