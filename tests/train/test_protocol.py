"""The one protocol (rows -> labeled, unlabeled, test; corruption) means the same on every
source, and every option a source cannot take is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from rmlc.data import drop_positives, split_labeled, subsample_multilabel
from rmlc.train import TrainConfig
from rmlc.train.datasets import build_training_data, training_data
from rmlc.train.protocol import RUN_SEED_DECISIONS, apply_protocol, decision_seed
from rmlc.train.sources import SourceRows
from rmlc.train.sources.tags import read as read_tags_source
from tests.train.conftest import tiny_config


def _multi_label_rows(n: int = 120, m: int = 5, seed: int = 0, sparse: bool = False) -> SourceRows:
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, m)) < 0.3).astype(np.float32)
    targets[targets.sum(axis=1) == 0, 0] = 1.0
    images = rng.integers(0, 256, size=(n, 1, 8, 8), dtype=np.uint8)
    given = scipy.sparse.csr_array(targets) if sparse else targets
    return SourceRows(images, given, [f"c{j}" for j in range(m)], test=(images[:10], targets[:10]))


def _single_label_rows(n: int = 100, m: int = 4) -> SourceRows:
    labels = np.arange(n) % m
    images = np.zeros((n, 1, 8, 8), dtype=np.uint8)
    targets = np.eye(m, dtype=np.float32)[labels]
    test_labels = np.arange(20) % m
    return SourceRows(
        images,
        targets,
        [f"c{j}" for j in range(m)],
        test=(images[:20], np.eye(m, dtype=np.float32)[test_labels]),
        labels=labels,
        test_labels=test_labels,
    )


def _config(**values) -> TrainConfig:
    return TrainConfig.from_dict({"dataset": "arrays", **values})


def _reference(rows: SourceRows, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The protocol written out for a multi-label source, step by step, from the functions
    of rmlc.data: (labeled rows, unlabeled rows)."""
    targets = np.asarray(
        rows.targets.toarray() if scipy.sparse.issparse(rows.targets) else rows.targets
    )
    candidates = np.setdiff1d(np.arange(len(targets)), rows.unlabeled)
    if config.subsample is not None:
        keep = np.sort(subsample_multilabel(targets[candidates], config.subsample, config.seed))
        candidates = candidates[keep]
    spare = candidates[:0]
    if config.num_labeled is not None and config.num_labeled < len(candidates):
        order = np.random.default_rng(config.seed).permutation(len(candidates))
        spare = candidates[np.sort(order[config.num_labeled :])]
        candidates = candidates[np.sort(order[: config.num_labeled])]
    pool = np.concatenate([rows.unlabeled, spare]).astype(np.int64)
    if not config.semi_supervised:
        pool = pool[:0]
    elif config.max_unlabeled is not None and len(pool) > config.max_unlabeled:
        picked = np.random.default_rng(config.seed).permutation(len(pool))
        pool = np.sort(pool[picked[: config.max_unlabeled]])
    return candidates, pool


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"subsample": 0.5},
        {"num_labeled": 30},
        {"num_labeled": 30, "semi_supervised": True},
        {"subsample": 0.6, "num_labeled": 40, "semi_supervised": True, "max_unlabeled": 50},
        {"num_labeled": 30, "semi_supervised": True, "max_unlabeled": 10, "seed": 4},
    ],
)
def test_the_protocol_matches_its_reference(options, sparse) -> None:
    """Dense arrays and sparse tables alike; rows the source gives unlabeled come first in
    the pool, then the labeled rows beyond num_labeled; the rows are not changed."""
    rows = _multi_label_rows(sparse=sparse)
    rows.unlabeled = np.arange(100, 120)
    before = rows.targets.copy()
    config = _config(**options)
    split = apply_protocol(rows, config)
    labeled, pool = _reference(rows, config)
    np.testing.assert_array_equal(split.labeled, labeled)
    np.testing.assert_array_equal(split.unlabeled, pool)
    assert split.clean is None and scipy.sparse.issparse(split.targets) == sparse
    left_out = np.concatenate([*split.dropped.values(), np.zeros(0, np.int64)])
    assert len(np.intersect1d(left_out, np.concatenate([labeled, pool]))) == 0
    assert len(left_out) + len(labeled) + len(pool) == 120  # every row accounted for
    after = rows.targets.toarray() if sparse else rows.targets
    np.testing.assert_array_equal(after, before.toarray() if sparse else before)


def test_single_label_sources_choose_per_class_and_keep_classes() -> None:
    """classes: other classes' rows join the pool after the rows beyond num_labeled, and
    the test split keeps the kept classes' columns and rows; num_labeled is per class."""
    rows = _single_label_rows()
    config = _config(classes=[1, 3], num_labeled=10, semi_supervised=True)
    split = apply_protocol(rows, config)
    inside = np.flatnonzero(np.isin(rows.labels, [1, 3]))
    chosen, spare = split_labeled(rows.labels[inside] // 2, 5, seed=0)
    np.testing.assert_array_equal(split.labeled, inside[chosen])
    outside = np.flatnonzero(~np.isin(rows.labels, [1, 3]))
    np.testing.assert_array_equal(split.unlabeled, np.concatenate([inside[spare], outside]))
    assert split.classes == ["c1", "c3"] and split.targets.shape == (100, 2)
    assert split.test[1].shape == (10, 2) and len(split.test[0]) == 10
    with pytest.raises(ValueError, match="num_labeled=9 is not a multiple of the 2 classes"):
        apply_protocol(rows, _config(classes=[1, 3], num_labeled=9))


def test_corruption_applies_to_the_labeled_rows_only_and_keeps_the_clean_targets() -> None:
    rows = _multi_label_rows()
    config = _config(num_labeled=50, missing_labels=0.5, seed=2)
    split = apply_protocol(rows, config)
    dense = np.asarray(rows.targets)
    expected = dense.copy()
    expected[split.labeled] = drop_positives(dense[split.labeled], 0.5, seed=2)
    np.testing.assert_array_equal(split.targets, expected)
    np.testing.assert_array_equal(split.clean, dense)
    assert split.targets[split.labeled].sum() < dense[split.labeled].sum()


def test_multi_label_sources_refuse_classes_by_name(mosaic_tables, tmp_path) -> None:
    with pytest.raises(ValueError, match="classes applies to single-label sources.*'arrays'"):
        apply_protocol(_multi_label_rows(), _config(classes=[0]))
    config = tiny_config(mosaic_tables, tmp_path / "r", classes=[0, 1])
    with pytest.raises(ValueError, match="classes applies to single-label sources.*'tags'"):
        build_training_data(config)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data_root": "/data"}, "data_root='/data' does not apply to dataset 'fashion-mosaic'"),
        ({"test": "t.csv"}, "test='t.csv' does not apply to dataset 'fashion-mosaic'"),
        ({"source": "full", "dataset": "cifar10"}, "source='full' does not apply to dataset"),
        ({"image_cache": "cache"}, "image_cache applies to image files; dataset 'fashion-mosaic'"),
        ({"bad_images": "skip"}, "bad_images applies to image files; dataset 'fashion-mosaic'"),
        (
            {"empty_labels": "skip"},
            "empty_labels='skip' does not apply to dataset 'fashion-mosaic'",
        ),
    ],
)
def test_options_a_source_cannot_take_are_refused_by_name(values, message, tmp_path) -> None:
    config = TrainConfig.from_dict({"dataset": "fashion-mosaic", "out": str(tmp_path), **values})
    with pytest.raises(ValueError, match=message):
        build_training_data(config)


def test_tags_tables_take_subsample_num_labeled_and_max_unlabeled(mosaic_tables, tmp_path) -> None:
    """As any source: of 96 labeled rows subsample keeps 48, 32 of them keep labels (8
    validate), the 16 others join the 64 rows of the unlabeled table and 50 of those 80
    are kept; every row is accounted for under its reason, none as an unreadable image."""
    values = {"subsample": 0.5, "num_labeled": 32, "semi_supervised": True, "max_unlabeled": 50}
    extra_table = str(mosaic_tables["unlabeled"])
    config = tiny_config(mosaic_tables, tmp_path / "r", unlabeled=extra_table, **values)
    data = build_training_data(config)
    assert (len(data.labeled), len(data.validation[0]), len(data.unlabeled)) == (24, 8, 50)
    train, extra, test = (table.to_dict() for table in data.rows)
    beyond = apply_protocol(read_tags_source(config), config).dropped["max_unlabeled"]
    in_train = int((beyond < 96).sum())
    assert 0 < in_train < 30  # the cap fell on both tables (fixed seed)
    assert train["dropped"] == {"subsampled": 48, "beyond_max_unlabeled": in_train}
    assert (train["training"], train["validation"], train["unlabeled"]) == (24, 8, 16 - in_train)
    assert extra["dropped"] == {"beyond_max_unlabeled": 30 - in_train}
    assert extra["unlabeled"] == 64 - (30 - in_train) and test["test"] == 48


def test_in_memory_rows_go_through_the_same_protocol(tmp_path) -> None:
    rows = _multi_label_rows()
    config = _config(num_labeled=40, validation_fraction=0.25, out=str(tmp_path))
    data = training_data(rows, config)
    assert (len(data.labeled), len(data.validation[0]), len(data.unlabeled)) == (30, 10, 0)


def test_each_new_decision_draws_its_own_seed() -> None:
    """The decisions rmlc has always drawn keep the run's seed (same seeds, same runs);
    any other decision gets its own, different for each decision and each seed."""
    assert all(decision_seed(7, decision) == 7 for decision in RUN_SEED_DECISIONS)
    hide = decision_seed(7, "hide_tags")
    assert hide != 7 and hide != decision_seed(7, "other") and hide != decision_seed(8, "hide_tags")
    assert hide == decision_seed(7, "hide_tags")


def _write_coco(root) -> None:
    """A tiny COCO folder (4 images per split; one image without annotations)."""
    from PIL import Image

    from tests.data.writers import write_coco

    for year in ("train2014", "val2014"):
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        dataset = write_coco(root / "annotations" / f"instances_{year}.json")
        (root / year).mkdir()
        for image in dataset["images"]:
            Image.new("RGB", (8, 8), (image["id"], 0, 0)).save(root / year / image["file_name"])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"num_labeled": 2, "semi_supervised": True}, (2, 2)),
        ({"num_labeled": 2}, (2, 0)),
        ({"subsample": 0.5, "semi_supervised": True}, (2, 0)),
        ({"semi_supervised": True, "num_labeled": 1, "max_unlabeled": 2}, (1, 2)),
    ],
)
def test_coco_takes_the_options_as_every_source_does(options, expected, tmp_path) -> None:
    """num_labeled keeps that many labeled and the rest unlabeled (it no longer subsamples:
    the paper's subsets are subsample's), as for the built-in sets and tags tables."""
    pytest.importorskip("pycocotools")
    _write_coco(tmp_path / "coco")
    values = {"dataset": "coco", "data_root": str(tmp_path / "coco"), "image_size": 8}
    values |= {"validation_fraction": 0.0, "out": str(tmp_path / "r"), **options}
    data = build_training_data(TrainConfig.from_dict(values))
    assert (len(data.labeled), len(data.unlabeled)) == expected
    assert data.class_names == ["person", "car", "dog"] and len(data.test[0]) == 4


@pytest.mark.parametrize("semi", [False, True])
def test_stl10_gives_its_unlabeled_images_as_its_own_unlabeled_rows(semi, tmp_path, monkeypatch):
    """Fold ``seed % 10`` is labeled; semi-supervised runs get the unlabeled images first in
    the pool (their true class unknown: -1), supervised runs do not read them."""
    import functools

    import rmlc.data
    from tests.data.writers import write_stl10

    written = write_stl10(tmp_path / "stl")
    monkeypatch.setattr(  # the fixture's files fail torchvision's MD5 check
        rmlc.data, "load_stl10", functools.partial(rmlc.data.load_stl10, verify=False)
    )
    values = {"dataset": "stl10", "data_root": str(tmp_path / "stl"), "seed": 12}
    values |= {"validation_fraction": 0.0, "semi_supervised": semi, "out": str(tmp_path / "r")}
    data = build_training_data(TrainConfig.from_dict(values))
    pool = data.train.rows.numpy()
    assert len(data.labeled) == len(written["folds"][2]) == 3
    np.testing.assert_array_equal(pool[data.unlabeled.numpy()], [3, 4, 5] if semi else [])
    assert data.unlabeled_classes.tolist() == ([-1, -1, -1] if semi else [])
    np.testing.assert_array_equal(
        data.train.store.images[3:].numpy(),
        written["unlabeled_images"] if semi else np.zeros((0, 3, 96, 96), np.uint8),
    )
