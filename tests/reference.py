"""Slow, literal reference implementations written straight from METHOD.md.

Plain Python loops over samples, positive labels and negative labels, on Python floats:
no vectorization, no sorting tricks. The vectorized kernels are checked against these.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]


def hinge(t: float, a: float = 1.0) -> float:
    """H_a(t) = max(0, a - t)."""
    return max(0.0, a - t)


def ramp(t: float, s: float, beta: float = 1.0) -> float:
    """R_s(t) = min(1 - s, max(0, 1 - t)) = H_1(t) - H_s(t); H_1 - beta H_s in general."""
    if beta == 1.0:
        return min(1.0 - s, max(0.0, 1.0 - t))
    return hinge(t, 1.0) - beta * hinge(t, s)


def harmonic(r: int) -> float:
    """L(r) = sum_{a=1..r} 1/a, L(0) = 0."""
    return sum(1.0 / a for a in range(1, r + 1))


def rank_from_draws(q: int, m: int, rounding: str) -> int:
    """r = floor((m - 1) / q), or rounded to nearest (halves up) as the authors' code."""
    if rounding == "round":
        return math.floor((m - 1) / q + 0.5)
    return (m - 1) // q


def sampled_draws(f: Sequence[float], j: int, order: Sequence[int]) -> int:
    """Scan negatives in the given order until the first with 1 - f_j + f_k > 0.

    Returns the number of draws q, or 0 when no negative violates.
    """
    for q, k in enumerate(order, start=1):
        if 1.0 - f[j] + f[k] > 0:
            return q
    return 0


def literal_loss(
    logits: Matrix,
    targets: Matrix,
    sample_weight: Sequence[float] | None = None,
    *,
    s: float = -0.8,
    kappa: float = 5.0,
    beta: float = 1.0,
    hinge_only: bool = False,
    rank: str = "exact",
    rounding: str = "floor",
    orders: dict[tuple[int, int], list[int]] | None = None,
    rng: random.Random | None = None,
    reduction: str = "mean",
    known: Matrix | None = None,
) -> tuple[list[float], float, dict[tuple[int, int], int]]:
    """RMLC loss (or WARP with ``hinge_only=True``) by the book.

    Args:
        logits, targets: N rows of m numbers; targets in {0, 1} or {-1, +1}.
        orders: for ``rank="sampled"``, ``orders[(i, j)]`` is the order in which positive j
            of sample i draws its (known) negatives; otherwise ``rng`` shuffles them.
        known: N rows of m truth values (None: all known). Positives and negatives are the
            known ones only: pairs join a known positive to a known negative, the exact rank
            counts known violators, the sampled one draws among known negatives (``m`` in
            ``(m - 1) / q`` stays the number of labels), the margin sums over known entries.

    Returns:
        (per-sample weighted losses, reduced loss, ranks used {(i, j): r}).
    """
    n_samples = len(logits)
    per_sample, ranks = [], {}
    for i in range(n_samples):
        f = [float(x) for x in logits[i]]
        y = [1 if float(t) == 1.0 else -1 for t in targets[i]]
        m = len(f)
        sure = [True] * m if known is None else [bool(v) for v in known[i]]
        positives = [j for j in range(m) if y[j] == 1 and sure[j]]
        negatives = [k for k in range(m) if y[k] == -1 and sure[k]]
        ranking = 0.0
        for j in positives:
            if rank == "exact":
                r = sum(1 for k in negatives if 1.0 - f[j] + f[k] > 0)
            else:
                if orders is not None:
                    order = orders[(i, j)]
                else:
                    order = list(negatives)
                    (rng or random).shuffle(order)
                q = sampled_draws(f, j, order)
                r = rank_from_draws(q, m, rounding) if q > 0 else 0
            ranks[(i, j)] = r
            weight = harmonic(r)
            for k in negatives:
                t = f[j] - f[k]
                ranking += weight * (hinge(t) if hinge_only else ramp(t, s, beta))
        margin = 0.0
        if not hinge_only:
            margin = sum(ramp(y[j] * f[j], s, beta) for j in range(m) if sure[j])
        w = 1.0 if sample_weight is None else float(sample_weight[i])
        per_sample.append(w * (ranking + kappa * margin))
    total = sum(per_sample)
    reduced = total / n_samples if reduction == "mean" else total
    return per_sample, reduced, ranks


def literal_subgradient(
    logits: Matrix,
    targets: Matrix,
    ranks: dict[tuple[int, int], int],
    sample_weight: Sequence[float] | None = None,
    *,
    s: float = -0.8,
    kappa: float = 5.0,
    hinge_only: bool = False,
    reduction: str = "mean",
    known: Matrix | None = None,
) -> list[list[float]]:
    """Subgradient of the loss with respect to the scores, paper Eq. 7 and 8.

    With ``known``, only known entries take part (as :func:`literal_loss`): an unknown
    entry's subgradient is 0.

    A ranking pair (j, k) contributes -L(r_j) to f_j and +L(r_j) to f_k when
    ``s < f_j - f_k < 1`` (for WARP's hinge: when ``f_j - f_k < 1``); a margin term
    contributes ``-kappa * y_j`` to f_j when ``s < y_j f_j < 1``.
    """
    n_samples = len(logits)
    scale = 1.0 / n_samples if reduction == "mean" else 1.0
    grad = []
    for i in range(n_samples):
        f = [float(x) for x in logits[i]]
        y = [1 if float(t) == 1.0 else -1 for t in targets[i]]
        m = len(f)
        w = (1.0 if sample_weight is None else float(sample_weight[i])) * scale
        g = [0.0] * m
        sure = [True] * m if known is None else [bool(v) for v in known[i]]
        positives = [j for j in range(m) if y[j] == 1 and sure[j]]
        negatives = [k for k in range(m) if y[k] == -1 and sure[k]]
        for j in positives:
            weight = harmonic(ranks[(i, j)])
            for k in negatives:
                t = f[j] - f[k]
                active = t < 1.0 if hinge_only else s < t < 1.0
                if active:
                    g[j] -= w * weight
                    g[k] += w * weight
        if not hinge_only:
            for j in range(m):
                if sure[j] and s < y[j] * f[j] < 1.0:
                    g[j] -= w * kappa * y[j]
        grad.append(g)
    return grad


def literal_balanced_margin(
    f: Sequence[float],
    y: Sequence[int],
    s: float = -0.8,
    beta: float = 1.0,
    known: Sequence[bool] | None = None,
) -> float:
    """Margin term with each side's weights summing to m / 2: w = m / (2 |C+|) on
    positives, m / (2 |C-|) on negatives (y in {-1, +1}). With ``known``, ``m``, ``C+``
    and ``C-`` count the known entries only, and the unknown add nothing."""
    sure = [True] * len(f) if known is None else [bool(v) for v in known]
    m = sum(sure)
    positives = sum(1 for v, k in zip(y, sure, strict=True) if v == 1 and k)
    negatives = m - positives
    total = 0.0
    for fj, yj, kj in zip(f, y, sure, strict=True):
        if not kj:
            continue
        count = positives if yj == 1 else negatives
        total += m / (2.0 * count) * ramp(yj * fj, s, beta)
    return total


def literal_ramp_statistics(logits: Matrix, targets: Matrix, s: float = -0.8) -> dict[str, float]:
    """Shares of positives, negatives and (positive, negative) pairs on the ramp's flat
    part (``y f <= s``; ``f_j - f_k <= s``), of active pairs (``s < f_j - f_k < 1``), mean
    scores, and the share of positives scored above 0, by loops over every pair."""
    counts = dict.fromkeys(("pos", "neg", "pos_flat", "neg_flat", "pairs", "flat", "active"), 0)
    pos_sum = neg_sum = 0.0
    above = 0
    for row, target in zip(logits, targets, strict=True):
        f = [float(x) for x in row]
        positives = [j for j, t in enumerate(target) if float(t) == 1.0]
        negatives = [k for k, t in enumerate(target) if float(t) != 1.0]
        for j in positives:
            counts["pos"] += 1
            counts["pos_flat"] += f[j] <= s
            pos_sum += f[j]
            above += f[j] > 0
            for k in negatives:
                counts["pairs"] += 1
                d = f[j] - f[k]
                counts["flat"] += d <= s
                counts["active"] += s < d < 1
        for k in negatives:
            counts["neg"] += 1
            counts["neg_flat"] += -f[k] <= s
            neg_sum += f[k]
    return {
        "positive_flat": counts["pos_flat"] / counts["pos"],
        "negative_flat": counts["neg_flat"] / counts["neg"],
        "pair_flat": counts["flat"] / counts["pairs"],
        "pair_active": counts["active"] / counts["pairs"],
        "positive_mean": pos_sum / counts["pos"],
        "negative_mean": neg_sum / counts["neg"],
        "positive_above_zero": above / counts["pos"],
    }


# ---- noisy-label baselines: GCE (Zhang & Sabuncu 2018) and LL-R (Kim et al. 2022) ----


def sigmoid(z: float) -> float:
    """1 / (1 + exp(-z)), without overflow."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def bce(z: float, y: int) -> float:
    """-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))], y in {0, 1}, without overflow."""
    return max(z, 0.0) - y * z + math.log1p(math.exp(-abs(z)))


def _reduce(per_sample: list[float], reduction: str) -> float:
    total = sum(per_sample)
    return total / len(per_sample) if reduction == "mean" else total


def literal_gce(
    logits: Matrix,
    targets: Matrix,
    q: float,
    sample_weight: Sequence[float] | None = None,
    reduction: str = "mean",
    known: Matrix | None = None,
) -> tuple[list[float], float, list[list[float]]]:
    """GCE per label, ``L_q = (1 - p^q) / q`` with ``p`` the probability of the label's
    target (paper Eq. 6 with one sigmoid per label), summed over (known) labels.

    Returns:
        (per-sample weighted losses, reduced loss, gradient with respect to the logits),
        the gradient from ``dL/dz = -sign p^q (1 - p)`` (``p = sigmoid(sign z)``).
    """
    scale = 1.0 / len(logits) if reduction == "mean" else 1.0
    per_sample, grad = [], []
    for i, (row, target) in enumerate(zip(logits, targets, strict=True)):
        w = 1.0 if sample_weight is None else float(sample_weight[i])
        total, g = 0.0, []
        sure = [True] * len(row) if known is None else known[i]
        for z, t, k in zip(row, target, sure, strict=True):
            if not k:
                g.append(0.0)
                continue
            sign = 1.0 if float(t) == 1.0 else -1.0
            p = sigmoid(sign * float(z))
            total += (1.0 - p**q) / q
            g.append(w * scale * (-sign * p**q * (1.0 - p)))
        per_sample.append(w * total)
        grad.append(g)
    return per_sample, _reduce(per_sample, reduction), grad


def literal_llr(
    logits: Matrix,
    targets: Matrix,
    epoch: int,
    delta_rel: float,
    sample_weight: Sequence[float] | None = None,
    reduction: str = "mean",
    known: Matrix | None = None,
) -> tuple[list[float], float, list[list[float]], set[tuple[int, int]]]:
    """LL-R as the authors' ``compute_batch_loss`` (mod_scheme LL-R): in epoch ``epoch``
    (0-based: the authors' epoch ``epoch + 1``) the rejection rate is ``epoch * delta_rel``
    percent of the batch's ``N m`` entries, ``k = ceil(N m rate)`` (in exact rational
    arithmetic here); the unobserved (negative) entries whose BCE is at least the ``k``-th
    largest negative BCE are rejected, every negative when ``k`` exceeds their number.
    With ``known``, ``N m`` becomes the number of known entries, only known negatives can
    be rejected and the unknown entries are left out of the loss.

    Returns:
        (per-sample weighted losses, reduced loss, gradient, rejected ``(i, j)``).
    """
    from fractions import Fraction

    n, m = len(logits), len(logits[0])
    sure = [[True] * m for _ in range(n)] if known is None else [list(r) for r in known]
    y = [[1 if float(t) == 1.0 else 0 for t in target] for target in targets]
    losses = [[bce(float(z), y[i][j]) for j, z in enumerate(logits[i])] for i in range(n)]
    rate = min(Fraction(epoch) * Fraction(str(delta_rel)) / 100, Fraction(1))
    entries = sum(1 for i in range(n) for j in range(m) if sure[i][j])
    k = math.ceil(entries * rate)
    negatives = [
        (losses[i][j], i, j) for i in range(n) for j in range(m) if y[i][j] == 0 and sure[i][j]
    ]
    rejected: set[tuple[int, int]] = set()
    if k >= len(negatives):
        rejected = {(i, j) for _, i, j in negatives}
    elif k > 0:
        threshold = sorted((value for value, _, _ in negatives), reverse=True)[k - 1]
        rejected = {(i, j) for value, i, j in negatives if value >= threshold}
    scale = 1.0 / n if reduction == "mean" else 1.0
    per_sample, grad = [], []
    for i in range(n):
        w = 1.0 if sample_weight is None else float(sample_weight[i])
        kept = [j for j in range(m) if (i, j) not in rejected and sure[i][j]]
        per_sample.append(w * sum(losses[i][j] for j in kept))
        g = [0.0] * m
        for j in kept:
            g[j] = w * scale * (sigmoid(float(logits[i][j])) - y[i][j])
        grad.append(g)
    return per_sample, _reduce(per_sample, reduction), grad, rejected


def literal_tag_disagreement(
    logits: Matrix,
    targets: Matrix,
    theta: Sequence[float] | None = None,
    known: Matrix | None = None,
) -> list[list[float]]:
    """rmlc.audit's per-tag disagreement, literally: for a given tag j,
    ``(mean_{k absent} H_1(f_j - f_k) + H_1(f_j - theta_j)) / 2``; for an absent tag k,
    ``(mean_{j given} H_1(f_j - f_k) + H_1(theta_k - f_k)) / 2`` (a mean over nothing is 0).
    With ``known``, "absent" means known absent, and an unknown absent tag gets 0."""
    result = []
    for i, (f, y) in enumerate(zip(logits, targets, strict=True)):
        m = len(f)
        boundary = theta if theta is not None else [0.0] * m
        given = [j for j in range(m) if y[j] > 0]
        absent = [k for k in range(m) if y[k] <= 0 and (known is None or known[i][k])]
        row = []
        for j in range(m):
            if j not in given and j not in absent:
                row.append(0.0)
                continue
            if j in given:
                pairs = [hinge(f[j] - f[k]) for k in absent]
                margin = hinge(f[j] - boundary[j])
            else:
                pairs = [hinge(f[g] - f[j]) for g in given]
                margin = hinge(boundary[j] - f[j])
            row.append(0.5 * ((sum(pairs) / len(pairs) if pairs else 0.0) + margin))
        result.append(row)
    return result


def literal_audit_score(
    disagreement: Sequence[float], given: Sequence[float], s: float = -0.8
) -> float:
    """An image's audit score: the sum of its tags' disagreements over the size of its tag
    set, its given tags plus ``min(1, d / (1 - s))`` for each absent tag (at least 1)."""
    total = sum(disagreement)
    size = 0.0
    for d, y in zip(disagreement, given, strict=True):
        size += 1.0 if y > 0 else min(1.0, d / (1.0 - s))
    return total / max(1.0, size)
