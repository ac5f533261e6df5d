"""The one protocol: a source's rows -> labeled, unlabeled and test rows, corrupted labels.

:func:`apply_protocol` is a pure function of a :class:`~rmlc.train.sources.SourceRows` and
the config, the same for every source; it is its steps (:data:`STEPS`), in order:

1. ``classes``: only these classes are labeled and tested; the other classes' rows join
   the unlabeled pool (single-label sources only: refused by name for multi-label ones).
2. ``subsample``: a class-frequency-keeping fraction of the labeled rows; the others are
   left out (the paper's 10% and 20% subsets).
3. ``num_labeled``: that many labeled rows keep their labels (class-stratified for
   single-label sources, at random otherwise); the others join the unlabeled pool.
4. ``label_noise`` then ``missing_labels``: the labeled rows' targets are corrupted (the
   paper's protocol; positives dropped; refused on rows with verified negatives).
5. ``hide_tags`` or ``single_positive`` (partial labels): known tags of the labeled rows
   made unknown (:mod:`rmlc.data.hiding`; its own :func:`decision_seed`); then
   ``unknown_tags: negative`` forgets which tags are unknown (absent = negative).
6. the unlabeled pool: the source's own unlabeled rows, then those of step 3, then those
   of step 1; none in a supervised run; at most ``max_unlabeled``, chosen at random.

The validation split is carved from the labeled rows afterwards
(:func:`rmlc.train.data.assemble`). Each decision draws from its own stream
(:func:`decision_seed`): every row left out is recorded in ``Split.dropped`` under its
decision's name.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from rmlc import data as datasets
from rmlc.data._common import derive_seed
from rmlc.train.config import TrainConfig
from rmlc.train.sources.registry import SourceRows, Targets

__all__ = ["RUN_SEED_DECISIONS", "STEPS", "Split", "apply_protocol", "decision_seed"]

# Decisions drawn from the run's seed itself, as rmlc has always drawn them, so that the
# same seeds give the same runs: their functions in rmlc.data derive a stream of their own
# from it (subsample, the stratified num_labeled, label_noise, missing_labels), or they
# permute different rows (the random num_labeled, max_unlabeled). Any new decision gets a
# seed derived from the run's seed and its name.
RUN_SEED_DECISIONS = frozenset(
    {"subsample", "num_labeled", "label_noise", "missing_labels", "max_unlabeled"}
)


def decision_seed(seed: int, decision: str) -> int:
    """The seed of one decision of the protocol (see :data:`RUN_SEED_DECISIONS`)."""
    if decision in RUN_SEED_DECISIONS:
        return seed
    return derive_seed(seed, zlib.crc32(decision.encode()))


@dataclass(frozen=True)
class Split:
    """The protocol's result (and its state between steps); rows are the source's.

    Attributes:
        targets: ``(N, m)`` targets as training sees them: the kept classes' columns,
            the labeled rows corrupted; dense float32, or sparse when nothing was corrupted.
        classes: the ``m`` class names kept.
        labeled: sorted rows trained on with labels (the validation split comes later).
        unlabeled: rows of the unlabeled pool, in pool order.
        test: ``(images, targets)`` of the test split (the kept classes), or None.
        clean: ``(N, m)`` targets before corruption when labels were corrupted, else None.
        dropped: decision name -> the rows it left out.
        spare: rows of step 3 (labeled, beyond ``num_labeled``), for the pool step.
        outside: rows of step 1 (other classes), for the pool step.
        negatives: ``(N, m)`` the tags verified absent (partial labels), or None: every
            tag not positive is negative.
        test_negatives: the same for the test split.
    """

    targets: Targets
    classes: list[str]
    labeled: np.ndarray
    unlabeled: np.ndarray
    test: tuple | None
    clean: Targets | None = None
    dropped: dict[str, np.ndarray] = field(default_factory=dict)
    spare: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    outside: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    negatives: Targets | None = None
    test_negatives: Targets | None = None


Step = Callable[[Split, SourceRows, TrainConfig], Split]


def _dense(targets: Targets) -> np.ndarray:
    return (targets.toarray() if scipy.sparse.issparse(targets) else targets).astype(np.float32)


def keep_classes(split: Split, rows: SourceRows, config: TrainConfig) -> Split:
    """Step 1, ``classes``: the other classes' rows leave the labeled rows (for the pool)."""
    if config.classes is None:
        return split
    if rows.labels is None:
        raise ValueError(
            f"classes applies to single-label sources (fashion-mnist, cifar10, stl10), not "
            f"dataset {config.dataset!r}, whose images may hold several classes"
        )
    kept = np.asarray(config.classes)
    inside = np.isin(rows.labels[split.labeled], kept)
    test = split.test
    if test is not None and rows.test_labels is not None:
        keep_test = np.isin(rows.test_labels, kept)
        test = (test[0][keep_test], test[1][keep_test][:, kept])
    if split.negatives is not None or split.test_negatives is not None:
        raise ValueError("classes and verified negatives (partial labels) cannot be combined")
    return dataclasses.replace(
        split,
        targets=split.targets[:, kept],
        classes=[split.classes[c] for c in kept],
        labeled=split.labeled[inside],
        outside=split.labeled[~inside],
        test=test,
    )


def subsample(split: Split, rows: SourceRows, config: TrainConfig) -> Split:
    """Step 2, ``subsample``: a class-frequency-keeping fraction of the labeled rows."""
    if config.subsample is None:
        return split
    seed = decision_seed(config.seed, "subsample")
    chosen = np.sort(
        datasets.subsample_multilabel(_dense(split.targets[split.labeled]), config.subsample, seed)
    )
    kept = np.zeros(len(split.labeled), dtype=bool)
    kept[chosen] = True
    dropped = {**split.dropped, "subsample": split.labeled[~kept]}
    return dataclasses.replace(split, labeled=split.labeled[chosen], dropped=dropped)


def choose_labeled(split: Split, rows: SourceRows, config: TrainConfig) -> Split:
    """Step 3, ``num_labeled``: which labeled rows keep their labels."""
    count, candidates = config.num_labeled, split.labeled
    if count is None or count >= len(candidates):
        return split
    seed = decision_seed(config.seed, "num_labeled")
    if rows.labels is not None:  # single-label: the same number of each class
        classes = split.targets.shape[1]
        per_class, remainder = divmod(count, classes)
        if remainder:
            raise ValueError(f"num_labeled={count} is not a multiple of the {classes} classes")
        single = _dense(split.targets[candidates]).argmax(axis=1)
        chosen, spare = datasets.split_labeled(single, per_class, seed=seed)
    else:
        order = np.random.default_rng(seed).permutation(len(candidates))
        chosen, spare = np.sort(order[:count]), np.sort(order[count:])
    return dataclasses.replace(split, labeled=candidates[chosen], spare=candidates[spare])


def corrupt(split: Split, rows: SourceRows, config: TrainConfig) -> Split:
    """Step 4, ``label_noise`` then ``missing_labels`` on the labeled rows' targets."""
    if config.label_noise <= 0 and config.missing_labels <= 0:
        return split
    if split.negatives is not None:
        raise ValueError(
            "label_noise and missing_labels redraw and remove positives of complete label "
            "vectors; this training data lists verified negatives (partial labels): use "
            "hide_tags, or corrupt a table without negatives"
        )
    clean = _dense(split.targets)
    targets, labeled = clean.copy(), split.labeled
    if config.label_noise > 0:
        seed = decision_seed(config.seed, "label_noise")
        targets[labeled] = datasets.corrupt_labels(
            targets[labeled], config.label_noise, seed=seed, protocol="paper"
        )
    if config.missing_labels > 0:
        seed = decision_seed(config.seed, "missing_labels")
        targets[labeled] = datasets.drop_positives(
            targets[labeled], config.missing_labels, seed=seed
        )
    return dataclasses.replace(split, targets=targets, clean=clean)


def hide(split: Split, rows: SourceRows, config: TrainConfig) -> Split:
    """Step 5, partial labels: ``hide_tags`` or ``single_positive`` on the labeled rows,
    then ``unknown_tags``."""
    if config.hide_tags > 0 or config.single_positive:
        labeled = split.labeled
        positives = _dense(split.targets) > 0
        if split.negatives is None:
            known = np.ones_like(positives)
        else:
            known = positives | (_dense(split.negatives) > 0)
        seed = decision_seed(config.seed, "hide_tags")
        if config.single_positive:
            known[labeled], _ = datasets.keep_single_positive(
                positives[labeled], seed, known[labeled]
            )
        else:
            known[labeled], _ = datasets.hide_tags(
                positives[labeled], config.hide_tags, seed, known[labeled]
            )
        inside = np.zeros(len(positives), dtype=bool)
        inside[labeled] = True
        negatives = scipy.sparse.csr_array((known & ~positives & inside[:, None]).astype(np.uint8))
        targets = (positives & known).astype(np.float32)  # a hidden tag is unknown, not wrong
        split = dataclasses.replace(split, targets=targets, negatives=negatives)
    if config.unknown_tags == "negative":
        split = dataclasses.replace(split, negatives=None, test_negatives=None)
    return split


def unlabeled_pool(split: Split, rows: SourceRows, config: TrainConfig) -> Split:
    """Step 6: the unlabeled pool (none when supervised; at most ``max_unlabeled``)."""
    pool = np.concatenate([np.asarray(rows.unlabeled, np.int64), split.spare, split.outside])
    dropped = dict(split.dropped)
    if not config.semi_supervised:
        dropped["supervised"] = pool
        pool = pool[:0]
    elif config.max_unlabeled is not None and len(pool) > config.max_unlabeled:
        picked = np.random.default_rng(decision_seed(config.seed, "max_unlabeled")).permutation(
            len(pool)
        )
        dropped["max_unlabeled"] = np.sort(pool[picked[config.max_unlabeled :]])
        pool = np.sort(pool[picked[: config.max_unlabeled]])
    return dataclasses.replace(split, unlabeled=pool, dropped=dropped)


STEPS: tuple[Step, ...] = (
    keep_classes,
    subsample,
    choose_labeled,
    corrupt,
    hide,
    unlabeled_pool,
)
"""The protocol's steps, in order (a new one, e.g. hiding tags, is one more function)."""


def apply_protocol(rows: SourceRows, config: TrainConfig) -> Split:
    """The :class:`Split` of a source's rows under the config's data options (pure: the
    rows are not changed; the same seed gives the same split)."""
    targets = rows.targets
    if not scipy.sparse.issparse(targets):
        targets = np.asarray(targets, dtype=np.float32)
    split = Split(
        targets=targets,
        classes=list(rows.classes),
        labeled=rows.labeled_rows(),
        unlabeled=np.zeros(0, dtype=np.int64),
        test=rows.test,
        negatives=rows.negatives,
        test_negatives=rows.test_negatives,
    )
    for step in STEPS:
        split = step(split, rows, config)
    return split
