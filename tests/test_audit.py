"""``rmlc.audit`` and ``rmlc audit``: which tags look wrong or missing."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import scipy.sparse
import torch

import reference
from rmlc.audit import AUDIT_COLUMNS, audit_labels, tag_disagreement, write_audit
from rmlc.cli import main
from tests.train.conftest import tiny_config, write_mosaic_table

AGREE, DISAGREE = 3.0, -3.0  # a network sure of a tag, and sure of its absence


def _scores(present: list[list[int]], m: int = 6) -> np.ndarray:
    """Scores of a network sure of the tags in ``present`` and of nothing else."""
    scores = np.full((len(present), m), DISAGREE)
    for row, tags in enumerate(present):
        scores[row, tags] = AGREE
    return scores


def _targets(given: list[list[int]], m: int = 6) -> np.ndarray:
    targets = np.zeros((len(given), m), dtype=np.int64)
    for row, tags in enumerate(given):
        targets[row, tags] = 1
    return targets


# ---- the function ---------------------------------------------------------------------------


@pytest.mark.parametrize(("theta", "s"), [(None, -0.8), ("per-class", -0.5)])
def test_tag_disagreement_equals_the_literal_definition(theta, s) -> None:
    """Random scores with ties and integer values (hinges exactly at their kinks), rows
    with no tags and with every tag, against the literal loops of tests/reference.py."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(40, 7)) * 2
    scores[:10] = rng.integers(-2, 3, size=(10, 7))  # ties and kinks
    targets = (rng.random((40, 7)) < 0.35).astype(np.int64)
    targets[0], targets[1] = 0, 1
    boundary = None if theta is None else rng.normal(size=7)
    found = tag_disagreement(scores, targets, 0.0 if boundary is None else boundary)
    expected = reference.literal_tag_disagreement(scores.tolist(), targets.tolist(), boundary)
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-12)
    result = audit_labels(scores, targets, s=s, threshold=0.0 if boundary is None else boundary)
    rows = zip(expected, targets.tolist(), strict=True)
    literal = [reference.literal_audit_score(d, y, s) for d, y in rows]
    np.testing.assert_allclose(result.score, np.asarray(literal)[result.images], rtol=1e-12)


def test_a_swapped_tag_is_flagged_as_wrong_and_the_true_one_as_missing() -> None:
    """Image 1 shows tags 0 and 1 but was given 0 and 2: tag 2 is wrong, 1 missing; the
    image outranks the correctly tagged image 0 and the weakly scored image 2."""
    scores = _scores([[0, 1], [0, 1], [3]])
    scores[2, 3] = 0.5  # a given tag the network is unsure of: not flagged
    result = audit_labels(scores, _targets([[0, 1], [0, 2], [3]]))
    assert result.images.tolist() == [1, 2, 0]
    assert result.wrong[0].tolist() == [2] and result.missing[0].tolist() == [1]
    assert [w.tolist() for w in result.wrong[1:]] == [[], []]
    assert [m.tolist() for m in result.missing[1:]] == [[], []]
    assert result.score[2] == 0.0  # every tag agreed with by a margin of 1 or more
    assert np.all(np.diff(result.score) <= 0)


def test_an_image_score_is_per_tag_of_its_tag_set() -> None:
    """One wrong tag among two weighs more than one among five; a missing tag counts as a
    tag of the image's set, so an image missing one of its two tags ranks like one given a
    wrong tag beside a right one."""
    scores = _scores([[0], [0, 1, 2, 3], [0, 1], [0]], m=8)
    result = audit_labels(scores, _targets([[0, 5], [0, 1, 2, 3, 5], [0], [0]], m=8))
    assert result.images.tolist()[:2] == [0, 2] and result.images.tolist()[-1] == 3
    image = dict(zip(result.images.tolist(), result.score.tolist(), strict=True))
    assert image[0] > image[1] > image[3] == 0.0
    assert image[2] == pytest.approx(image[0], rel=0.2)


def test_ties_keep_the_input_order_and_flags_come_most_suspect_first() -> None:
    scores = _scores([[0], [0], [0], [0]])
    scores[:, 4] = [1.0, 1.0, 1.0, 1.0]  # two tags look present but were not given:
    scores[:, 5] = [2.5, 2.5, 2.5, 2.5]  # 5 more surely than 4
    result = audit_labels(scores, _targets([[0], [0], [0], [0]]), cutoff=0.5)
    assert result.images.tolist() == [0, 1, 2, 3]  # equal scores: input order
    assert all(m.tolist() == [5, 4] for m in result.missing)
    # the cut-off is reached, not passed: 4's disagreement is exactly 1.0
    assert [m.tolist() for m in audit_labels(scores, _targets([[0]] * 4), cutoff=1.0).missing] == [
        [5, 4]
    ] * 4


def test_images_without_tags() -> None:
    """No tag given: only absent tags are scored; one the network is sure of is missing."""
    scores = _scores([[], [2]])
    result = audit_labels(scores, _targets([[], []]))
    assert result.images.tolist() == [1, 0]
    assert result.missing[0].tolist() == [2] and result.wrong[0].tolist() == []
    assert result.score[1] == 0.0
    # missing tag 2: margin hinge 1 + 3 = 4, no given tag to compare with: d = 2, past the
    # cap 1.8: one whole believed tag; the image's disagreement per tag is 2 / 1
    assert result.score[0] == pytest.approx(2.0)


def test_sparse_and_signed_targets_give_the_dense_result() -> None:
    rng = np.random.default_rng(1)
    scores = torch.from_numpy(rng.normal(size=(30, 5)).astype(np.float32))
    targets = (rng.random((30, 5)) < 0.4).astype(np.int64)
    dense = audit_labels(scores, targets)
    for other in (
        scipy.sparse.csr_array(targets.astype(np.uint8)),
        scipy.sparse.coo_array(targets.astype(np.uint8)),
        targets * 2 - 1,
        torch.from_numpy(targets).bool(),
    ):
        result = audit_labels(scores, other)
        np.testing.assert_array_equal(result.images, dense.images)
        np.testing.assert_array_equal(result.score, dense.score)
        assert [w.tolist() for w in result.wrong] == [w.tolist() for w in dense.wrong]
        assert [m.tolist() for m in result.missing] == [m.tolist() for m in dense.missing]


def test_the_ramps_cap_sets_the_default_cutoff() -> None:
    """A tag is flagged when its disagreement reaches ``1 - s``."""
    scores = np.array([[3.0, -3.0, 0.0]])
    targets = np.array([[1, 0, 0]])
    d = tag_disagreement(scores, targets)  # tag 2: (H(3 - 0) + H(-0)) / 2 = 0.5
    assert d[0, 2] == 0.5
    assert audit_labels(scores, targets, s=-0.8).missing[0].tolist() == []
    scores[0, 2] = 1.6  # (H(1.4) + H(-1.6)) / 2 = (0 + 2.6) / 2 = 1.3
    assert audit_labels(scores, targets, s=-0.25).missing[0].tolist() == [2]
    assert audit_labels(scores, targets, s=-0.8).missing[0].tolist() == []


@pytest.mark.parametrize(
    ("scores", "targets", "kwargs", "message"),
    [
        (np.zeros((3, 4)), np.zeros((3, 5)), {}, "targets have shape"),
        (np.zeros(4), np.zeros(4), {}, "scores must be a numeric"),
        (np.array([[0.0, np.nan]]), np.zeros((1, 2)), {}, "scores must be finite"),
        (np.zeros((2, 2)), np.array([[0, 2], [1, 0]]), {}, "found values"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"s": 0.5}, "s must lie in"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"threshold": [0.0, 1.0, 2.0]}, "threshold must"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"cutoff": -1.0}, "cutoff must"),
    ],
)
def test_bad_input_is_named(scores, targets, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        audit_labels(scores, targets, **kwargs)


def test_the_csv_is_written_most_suspect_first(tmp_path) -> None:
    scores = _scores([[0, 1], [0, 1], [3]])
    result = audit_labels(scores, _targets([[0, 1], [0, 2], [3, 4]]))
    names = ["cat", "dog", "car", "sky", "sea", "sun"]
    path = tmp_path / "suspects.csv"
    write_audit(path, result, ["a.png", "b.png", "c.png"], names)
    with path.open() as stream:
        rows = list(csv.reader(stream))
    assert tuple(rows[0]) == AUDIT_COLUMNS == ("image", "score", "wrong", "missing")
    assert [row[0] for row in rows[1:]] == ["b.png", "c.png", "a.png"]
    assert rows[1][2:] == ["car", "dog"] and rows[2][2:] == ["sea", ""]
    assert [float(row[1]) for row in rows[1:]] == pytest.approx(result.score.tolist(), rel=1e-5)
    with pytest.raises(ValueError, match="2 image names for 3"):
        write_audit(path, result, ["a.png", "b.png"], names)


# ---- the command ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """A tiny network trained on a tags table, and a copy of the table with two images'
    tags swapped."""
    from rmlc.train import run

    folder = tmp_path_factory.mktemp("audit")
    tables = {
        "root": folder,
        "train": write_mosaic_table(folder, "train", 48, seed=1),
        "test": write_mosaic_table(folder, "test", 16, seed=2),
    }
    run(tiny_config(tables, folder / "run", epochs=1))
    lines = tables["train"].read_text().splitlines()
    (first, tags_a), (second, tags_b) = (line.split(",") for line in lines[1:3])
    lines[1:3] = [f"{first},{tags_b}", f"{second},{tags_a}"]
    swapped = folder / "swapped.csv"
    swapped.write_text("\n".join(lines) + "\n")
    return {**tables, "swapped": swapped, "checkpoint": folder / "run" / "best.pt"}


def _read(path) -> list[dict[str, str]]:
    with open(path) as stream:
        return list(csv.DictReader(stream))


def test_rmlc_audit_writes_the_functions_result_for_every_image(audited, tmp_path) -> None:
    from rmlc.data import read_tags_table
    from rmlc.inference import file_store, load_trained_model, score_images

    out = tmp_path / "suspects.csv"
    table = audited["swapped"]
    arguments = ["audit", "--checkpoint", str(audited["checkpoint"]), "--table", str(table)]
    assert main([*arguments, "--image-root", str(audited["root"]), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "image,score,wrong,missing"
    rows = _read(out)
    trained = load_trained_model(audited["checkpoint"])
    tags = read_tags_table(table, classes=trained.class_names)
    store = file_store(trained, [audited["root"] / image for image in tags.images])
    scores = score_images(trained, trained.view(store), "cpu")
    expected = audit_labels(scores, tags.targets)
    assert [row["image"] for row in rows] == [tags.images[i] for i in expected.images]
    assert [float(row["score"]) for row in rows] == pytest.approx(expected.score, rel=1e-5)
    names = trained.class_names
    for row, wrong, missing, image in zip(
        rows, expected.wrong, expected.missing, expected.images, strict=True
    ):
        assert row["wrong"] == "|".join(names[j] for j in wrong)
        assert row["missing"] == "|".join(names[j] for j in missing)
        given = set(tags.labels_of(int(image)))
        assert set(filter(None, row["wrong"].split("|"))) <= given
        assert not set(filter(None, row["missing"].split("|"))) & given


@pytest.mark.slow
def test_rmlc_audit_folds_scores_each_image_with_a_network_that_never_saw_it(
    audited, tmp_path, monkeypatch
) -> None:
    """``--folds 2``: two networks, each trained (and validated) on the images of the other
    fold, score the images of their own fold; the CSV is the audit of those scores."""
    import rmlc.inference
    import rmlc.train.data

    seen, scored, original_assemble = [], [], rmlc.train.data.assemble
    original_score = rmlc.inference.score_images

    def assemble(store, targets, labeled_rows, *args, **kwargs):
        seen.append(set(np.asarray(labeled_rows).tolist()))
        return original_assemble(store, targets, labeled_rows, *args, **kwargs)

    def score(trained, view, *args, **kwargs):
        result = original_score(trained, view, *args, **kwargs)
        scored.append((view.rows.tolist(), result))
        return result

    monkeypatch.setattr(rmlc.train.data, "assemble", assemble)
    monkeypatch.setattr(rmlc.inference, "score_images", score)
    out = tmp_path / "suspects.csv"
    arguments = ["audit", "--checkpoint", str(audited["checkpoint"]), "--table"]
    arguments += [str(audited["train"]), "--out", str(out), "--folds", "2"]
    assert main(arguments) == 0
    assert len(seen) == len(scored) == 2
    for trained_on, (rows, _) in zip(seen, scored, strict=True):
        assert trained_on and not trained_on & set(rows)
    assert sorted(scored[0][0] + scored[1][0]) == list(range(48))
    assert (tmp_path / "suspects.folds" / "fold-0" / "best.pt").is_file()
    scores = np.zeros((48, 10), dtype=np.float32)
    for rows, values in scored:
        scores[rows] = values
    from rmlc.data import read_tags_table

    tags = read_tags_table(audited["train"])
    expected = audit_labels(scores, tags.targets)
    assert [row["image"] for row in _read(out)] == [tags.images[i] for i in expected.images]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("unknown-tag", "'Unicorn', not among the 10 given classes"),
        ("one-fold", "folds must be an integer >= 2"),
        ("not-csv", "--out must be a .csv file"),
        ("no-checkpoint", "checkpoint not found"),
    ],
)
def test_rmlc_audit_names_bad_input(audited, tmp_path, capsys, change, message) -> None:
    table, checkpoint = audited["train"], str(audited["checkpoint"])
    out, extra = tmp_path / "suspects.csv", []
    if change == "unknown-tag":
        lines = table.read_text().splitlines()
        lines[2] = lines[2].split(",")[0] + ",Unicorn"
        table = tmp_path / "odd.csv"
        table.write_text("\n".join(lines) + "\n")
    elif change == "one-fold":
        extra = ["--folds", "1"]
    elif change == "not-csv":
        out = tmp_path / "suspects.txt"
    else:
        checkpoint = str(tmp_path / "none.pt")
    arguments = ["audit", "--checkpoint", checkpoint, "--table", str(table), "--image-root"]
    code = main([*arguments, str(audited["root"]), "--out", str(out), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_only_known_tags_are_scored_and_flagged() -> None:
    """Partial labels: pairs between given and known absent tags only, as the literal
    definition with a mask; an unknown tag is never flagged; dense, sparse and all-known
    masks agree."""
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(30, 6)) * 2
    targets = (rng.random((30, 6)) < 0.35).astype(np.int64)
    known = (rng.random((30, 6)) < 0.6) | targets.astype(bool)
    found = tag_disagreement(scores, targets, 0.0, known=known)
    expected = reference.literal_tag_disagreement(
        scores.tolist(), targets.tolist(), None, known.tolist()
    )
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-12)
    assert (found[~known] == 0).all()
    sparse = tag_disagreement(scores, targets, 0.0, known=scipy.sparse.csr_array(known))
    np.testing.assert_array_equal(sparse, found)
    everything = np.ones_like(known)
    np.testing.assert_array_equal(
        tag_disagreement(scores, targets, 0.0, known=everything), tag_disagreement(scores, targets)
    )
    # an unknown tag the network is sure of is not "missing"; known it would be
    scores[0], targets[0] = [-5, 5, -5, -5, -5, -5], [1, 0, 0, 0, 0, 0]
    known[0] = [True, False, True, True, True, True]
    result = audit_labels(scores, targets, known=known)
    row = list(result.images).index(0)
    assert result.missing[row].tolist() == [] and result.wrong[row].tolist() == [0]
    known[0, 1] = True
    result = audit_labels(scores, targets, known=known)
    assert result.missing[list(result.images).index(0)].tolist() == [1]
    with pytest.raises(ValueError, match=r"known must be a bool \(N, m\) array"):
        audit_labels(scores, targets, known=known.astype(np.uint8))
