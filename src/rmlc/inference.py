"""Using a trained network: load a checkpoint, score images, write tags, extract features,
audit a tags table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from rmlc.atomic import atomic_write_text
from rmlc.audit import AuditResult, audit_labels
from rmlc.data.shards import ShardSet
from rmlc.train.data import FileStore, ImageStore, ImageView, ShardStore
from rmlc.train.trained import TrainedModel, as_uint8_images, load_trained_model, score_images

__all__ = [
    "IMAGE_EXTENSIONS",
    "TrainedModel",
    "as_uint8_images",
    "audit_table",
    "cross_fitted_scores",
    "find_images",
    "load_trained_model",
    "score_images",
    "write_predictions",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def find_images(directory: str | Path) -> list[Path]:
    """Image files of a folder and its subfolders, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"image folder not found: {directory}")
    paths = sorted(path for path in directory.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(
            f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found in {directory}"
        )
    return paths


def file_store(trained: TrainedModel, paths: list[Path]) -> FileStore:
    """A store reading ``paths`` the way the model was trained (channels, size)."""
    return FileStore(paths, None, trained.normalization["size"], trained.in_channels)


def shard_store(trained: TrainedModel, shards: ShardSet) -> ShardStore:
    """A store reading a shard folder's images the way the model was trained."""
    return ShardStore(shards, trained.normalization["size"], trained.in_channels)


def write_predictions(
    path: str | Path,
    images: list[str],
    scores: np.ndarray,
    class_names: list[str],
    k: int = 3,
    threshold: float | None = 0.0,
) -> None:
    """Write each image's top-k labels with scores and its thresholded labels.

    ``.csv``: columns ``image, topk, topk_scores, labels`` (lists joined by ``|``);
    ``.json``: a list of ``{"image", "topk": [{"label", "score"}], "labels"}``.
    """
    path = Path(path)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rows = []
    for image, row, top in zip(images, scores, order, strict=True):
        positive = (
            [] if threshold is None else [class_names[j] for j in np.flatnonzero(row >= threshold)]
        )
        rows.append(
            {
                "image": image,
                "topk": [{"label": class_names[j], "score": float(row[j])} for j in top],
                "labels": positive,
            }
        )
    if path.suffix.lower() == ".json":
        atomic_write_text(json.dumps(rows, indent=2), path)
    elif path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["image", "topk", "topk_scores", "labels"])
        for row in rows:
            writer.writerow(
                [
                    row["image"],
                    "|".join(item["label"] for item in row["topk"]),
                    "|".join(f"{item['score']:.6g}" for item in row["topk"]),
                    "|".join(row["labels"]),
                ]
            )
        atomic_write_text(buffer.getvalue(), path)
    else:
        raise ValueError(f"output must end in .csv or .json, got {path}")


# ---- audit -----------------------------------------------------------------------------

# What a fold network of ``rmlc audit --folds`` changes in the checkpoint's training config:
# it trains on the table's other folds as they are (no subset, no added corruption, no
# unlabeled pool, nothing resumed or loaded).
_FOLD_SETTINGS: dict[str, Any] = {
    "dataset": "tags",
    "data_root": None,
    "test": None,
    "unlabeled": None,
    "num_labeled": None,
    "classes": None,
    "max_unlabeled": None,
    "subsample": None,
    "label_noise": 0.0,
    "missing_labels": 0.0,
    "semi_supervised": False,
    "resume": False,
    "overwrite": True,  # each fold's run folder is the audit's own: a re-run replaces it
    "init_checkpoint": None,
}


def cross_fitted_scores(
    trained: TrainedModel,
    store: ImageStore,
    targets: scipy.sparse.csr_array,
    labeled: np.ndarray,
    folds: int,
    out: str | Path,
    device: str = "cpu",
) -> np.ndarray:
    """Out-of-sample scores ``(N, m)`` of a store's images, by ``folds`` networks.

    The rows are split into ``folds`` folds at random (the checkpoint's seed); network
    ``k`` trains with the checkpoint's training config (its backbone, loss, budget, image
    size and normalisation; see ``_FOLD_SETTINGS`` for what changes) on the labeled rows
    of the other folds, with its run in ``out/fold-k``, and scores the rows of fold ``k``.

    Args:
        trained: the checkpoint's model (its config, classes and input settings).
        store: the images.
        targets: ``(N, m)`` given tags (sparse positives).
        labeled: ``(N,)`` bool, rows whose tags are trained on (rows without tags are
            scored, never trained on).
        folds: number of folds, ``>= 2``.
        out: folder of the fold networks' runs.
        device: where they train and score.
    """
    from rmlc.checks import check_integer
    from rmlc.train import TrainConfig, build_trainer
    from rmlc.train.data import assemble
    from rmlc.train.launch import run_with

    folds = check_integer(folds, "folds", 2)
    if not trained.config:
        raise ValueError("the checkpoint holds no training config: --folds needs one to train")
    if int(labeled.sum()) < folds:
        raise ValueError(f"--folds {folds} needs at least {folds} images with tags")
    seed = int(trained.config.get("seed", 0))
    fold = np.random.default_rng(seed).permutation(len(labeled)) % folds
    scores = np.zeros(targets.shape, dtype=np.float32)
    for k in range(folds):
        config = TrainConfig.from_dict(
            {
                **trained.config,
                **_FOLD_SETTINGS,
                "image_size": trained.normalization["size"],
                "device": device,
                "out": str(Path(out) / f"fold-{k}"),
            },
            source=f"the checkpoint's config (fold {k + 1} of {folds})",
        )
        data = assemble(
            store,
            targets,
            np.flatnonzero(labeled & (fold != k)),
            np.arange(0),
            None,
            trained.class_names,
            config,
            mean=trained.normalization["mean"],
            std=trained.normalization["std"],
        )
        run_with(config, lambda context, c=config, d=data: build_trainer(c, context, d).fit())
        best = Path(config.out) / "best.pt"
        network = load_trained_model(best if best.is_file() else Path(config.out) / "last.pt")
        rows = np.flatnonzero(fold == k)
        scores[rows] = score_images(network, ImageView(store, rows), device)
    return scores


def audit_table(
    checkpoint: str | Path,
    table: str | Path,
    image_root: str | Path | None = None,
    folds: int | None = None,
    folds_out: str | Path | None = None,
    device: str = "cpu",
) -> tuple[AuditResult, list[str], list[str]]:
    """:func:`rmlc.audit.audit_labels` of every image of a tags table (or shard folder).

    Scores come from the checkpoint's network (in sample, when it trained on the table),
    or with ``folds`` from that many networks trained on the table's other folds
    (:func:`cross_fitted_scores`, runs in ``folds_out``). The ramp's ``s`` is the
    checkpoint's loss's (the paper's -0.8 for other losses), the boundary its threshold.
    In a table with verified negatives only known tags are scored (unknown ones are
    neither wrong nor missing).

    Returns:
        the audit, the image names as the table writes them, and the class names.
    """
    from rmlc.train.datasets import read_tags, table_images

    trained = load_trained_model(checkpoint, device)
    tags, shards = read_tags(str(table), trained.class_names)
    if shards is not None:
        store: ImageStore = shard_store(trained, shards)
    else:
        store = file_store(trained, table_images(tags, None, image_root, table))
    if folds is None:
        scores = score_images(trained, trained.view(store), device)
    else:
        out = folds_out or f"{str(table).rstrip('/')}.folds"
        scores = cross_fitted_scores(trained, store, tags.targets, tags.labeled, folds, out, device)
    loss_params = trained.config.get("loss_params") or {}
    ramp = str(trained.config.get("loss", "")).startswith("rmlc")
    s = float(loss_params.get("s", -0.8)) if ramp else -0.8
    threshold = np.asarray(trained.threshold or 0.0, dtype=np.float64)
    known = None if tags.negatives is None else tags.targets + tags.negatives
    result = audit_labels(scores, tags.targets, s=s, threshold=threshold, known=known)
    return result, list(tags.images), list(trained.class_names)
