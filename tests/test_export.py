"""Export for serving: the ONNX file of a tiny trained checkpoint, run under onnxruntime on
images decoded as a server would (PIL and the file's metadata alone), gives the scores of
``rmlc predict`` on the same image files."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rmlc
from rmlc.cli import build_parser, main
from rmlc.export import export_onnx, read_metadata
from rmlc.inference import load_trained_model

# Checked, not imported: onnx, onnxruntime and onnxscript cost every worker seconds at
# collection; the tests that read a graph import them when they run.
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxruntime", "onnxscript")),
    reason="needs rmlc[export]: onnx, onnxruntime, onnxscript",
)

CLASSES = ["cat", "dog", "car", "tree"]
TOLERANCE = 1e-4
CPU = ["CPUExecutionProvider"]


def _tiny_images(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` RGB images whose tags are visible: class j brightens one quadrant's channel."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, len(CLASSES))) < 0.4).astype(np.float32)
    targets[targets.sum(1) == 0, 0] = 1
    images = rng.integers(0, 96, (n, 3, size, size)).astype(np.uint8)
    half = size // 2
    for j in range(len(CLASSES)):
        top, left = (half * k for k in divmod(j, 2))
        images[targets[:, j] > 0, j % 3, top : top + half, left : left + half] += 150
    return images, targets


def _train(folder: Path, **config) -> Path:
    """A training run's best.pt: one epoch of a tiny network on 24 images."""
    from rmlc.train import fit

    images, targets = _tiny_images(24, 16, seed=0)
    settings = dict(backbone="small-cnn", width=4, epochs=1, batch_size=8, lr=0.01)
    settings.update(progress=False, tensorboard=False, num_workers=0, device="cpu")
    settings.update(config)
    fit(images, targets, class_names=CLASSES, out=str(folder), **settings)
    return folder / "best.pt"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """A tiny checkpoint (thresholds chosen per class, top-2), exported by ``rmlc export``."""
    folder = tmp_path_factory.mktemp("export")
    checkpoint = _train(folder / "run", threshold="per-class", topk=2, validation_fraction=0.25)
    out = folder / "model.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    return {"checkpoint": checkpoint, "onnx": out, "printed": printed.getvalue()}


def _image_files(folder: Path) -> list[Path]:
    """Five PNG files of other sizes and modes than the network's (a server's inputs)."""
    images, _ = _tiny_images(5, 24, seed=5)
    folder.mkdir()
    paths = []
    for index, image in enumerate(images):
        picture = Image.fromarray(image.transpose(1, 2, 0)).resize((24 + 4 * index, 20))
        if index == 3:
            picture = picture.convert("L")  # a greyscale file for a colour model
        if index == 4:
            picture = picture.convert("RGBA")
        paths.append(folder / f"image-{index}.png")
        picture.save(paths[-1])
    return paths


def _server_inputs(paths: list[Path], metadata: dict) -> np.ndarray:
    """What a server feeds the graph, from the metadata alone: decode, convert, resize."""
    side = metadata["image_size"]
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert(metadata["color_mode"]).resize((side, side), Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    return np.stack(arrays)


@pytest.mark.slow  # the tiny run and its export: about 30 s on 2 busy cores
def test_onnxruntime_gives_the_scores_of_rmlc_predict_at_batch_1_and_5(exported, tmp_path):
    paths = _image_files(tmp_path / "images")
    tags = tmp_path / "tags.json"
    arguments = ["--images", str(tmp_path / "images"), "--out", str(tags), "--topk", "4"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["predict", "--checkpoint", str(exported["checkpoint"]), *arguments]) == 0
    predicted = {row["image"]: row for row in json.loads(tags.read_text())}
    expected = np.array(
        [
            [
                next(t["score"] for t in predicted[path.name]["topk"] if t["label"] == name)
                for name in CLASSES
            ]
            for path in paths
        ]
    )
    metadata = read_metadata(exported["onnx"])
    inputs = _server_inputs(paths, metadata)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported["onnx"]), providers=CPU)
    (batch_of_5,) = session.run(None, {"images": inputs})
    one_by_one = np.concatenate([session.run(None, {"images": row[None]})[0] for row in inputs])
    assert batch_of_5.shape == (5, len(CLASSES)) and batch_of_5.dtype == np.float32
    np.testing.assert_allclose(batch_of_5, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(one_by_one, expected, rtol=0, atol=TOLERANCE)
    assert np.ptp(expected, axis=0).max() > 10 * TOLERANCE  # images that score differently
    assert "wrote" in exported["printed"] and "(batch, 3, 16, 16)" in exported["printed"]


@pytest.mark.slow  # the tiny run and its export: about 30 s on 2 busy cores
def test_the_metadata_says_how_to_feed_the_graph_and_where_it_came_from(exported) -> None:
    trained = load_trained_model(exported["checkpoint"])
    metadata = read_metadata(exported["onnx"])
    assert metadata["class_names"] == CLASSES
    assert (metadata["image_size"], metadata["channels"], metadata["color_mode"]) == (16, 3, "RGB")
    assert metadata["mean"] == pytest.approx(trained.normalization["mean"], abs=0)
    assert metadata["std"] == pytest.approx(trained.normalization["std"], abs=0)
    assert isinstance(trained.threshold, list) and len(trained.threshold) == len(CLASSES)
    assert metadata["threshold"] == pytest.approx(trained.threshold, abs=0)  # chosen per class
    assert metadata["topk"] == 2 and metadata["single_label"] is False
    digest = hashlib.sha256(exported["checkpoint"].read_bytes()).hexdigest()
    assert metadata["checkpoint_sha256"] == digest
    assert metadata["checkpoint"] == "best.pt" and metadata["rmlc_version"] == rmlc.__version__
    import onnx

    model = onnx.load(str(exported["onnx"]))
    (graph_input,) = model.graph.input
    tensor = graph_input.type.tensor_type
    assert tensor.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    assert isinstance(dims[0], str) and dims[1:] == [3, 16, 16]  # a named, dynamic batch
    assert [o.name for o in model.graph.output] == ["scores"]
    assert {opset.version for opset in model.opset_import if opset.domain == ""} == {18}


@pytest.mark.slow  # the tiny run and its export: about 30 s on 2 busy cores
def test_a_graph_that_disagrees_with_its_checkpoint_is_not_written(exported, tmp_path, monkeypatch):
    """The check before writing: the exported graph of another network's weights fails."""
    import rmlc.export

    trained = load_trained_model(exported["checkpoint"])
    with torch.no_grad():
        trained.model.classifier.bias += 0.5
    changed = tmp_path / "changed.pt"
    trained.save(changed)
    import onnx

    monkeypatch.setattr(rmlc.export, "_to_onnx", lambda *_: onnx.load(str(exported["onnx"])))
    with pytest.raises(RuntimeError, match=r"differ from rmlc's by 0\.5 "):
        export_onnx(changed, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
    result = export_onnx(exported["checkpoint"], tmp_path / "model.onnx")  # its own graph
    assert result.max_difference <= TOLERANCE and result.metadata["class_names"] == CLASSES


def _foreign_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files that are not rmlc training checkpoints -> the words their error must say."""
    import torchvision

    files = {
        "torchvision": (folder / "resnet.pt", r"not an rmlc checkpoint \(no 'model' entry\)"),
        "pretrained": (folder / "weights.pt", r"no num_classes, normalization"),
        "mismatched": (folder / "other.pt", r"weights in .* do not fit its backbone 'small-cnn'"),
        "text": (folder / "notes.pt", "not a readable checkpoint"),
        "missing": (folder / "absent.pt", "checkpoint not found"),
    }
    torch.save(torchvision.models.resnet18().state_dict(), files["torchvision"][0])
    backbone = {"backbone.layers.0.weight": torch.zeros(4, 1, 3, 3)}
    torch.save({"model": backbone, "backbone": "small-cnn"}, files["pretrained"][0])  # pretrain's
    normalization = {"mean": [0.5], "std": [0.25], "size": 16}
    other = {"backbone": "small-cnn", "num_classes": 4, "normalization": normalization}
    torch.save({"model": backbone, **other}, files["mismatched"][0])  # a classifier missing
    files["text"][0].write_text("not a checkpoint")
    return files


def test_bad_checkpoints_are_named(tmp_path, capsys) -> None:
    for path, words in _foreign_files(tmp_path).values():
        with pytest.raises((FileNotFoundError, RuntimeError), match=words) as raised:
            export_onnx(path, tmp_path / "model.onnx")
        assert str(path) in str(raised.value)
        assert main(["export", "--checkpoint", str(path), "--out", str(tmp_path / "m.onnx")]) == 2
        assert str(path) in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        export_onnx(tmp_path / "absent.pt", tmp_path / "model.pb")
    with pytest.raises(ValueError, match="opset must be 18 or higher, got 17"):
        export_onnx(tmp_path / "absent.pt", tmp_path / "model.onnx", opset=17)


def test_missing_packages_name_the_extra(monkeypatch, tmp_path, capsys) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    with pytest.raises(ImportError, match=r"needs onnxruntime .*pip install 'rmlc\[export\]'"):
        export_onnx(tmp_path / "best.pt", tmp_path / "model.onnx")
    assert main(["export", "--checkpoint", "best.pt", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "pip install 'rmlc[export]'" in capsys.readouterr().err


def test_every_flag_of_export_has_help() -> None:
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    export = commands.choices["export"]
    flags = [action for action in export._actions if action.dest != "help"]
    assert {a.dest for a in flags} == {"checkpoint", "out", "opset", "check"}
    assert all(action.help for action in flags)


@pytest.mark.slow
def test_a_resnet18_exports_with_the_scores_of_rmlc(tmp_path) -> None:
    checkpoint = _train(tmp_path / "run", backbone="resnet18", image_size=32, lr=0.001)
    result = export_onnx(checkpoint, tmp_path / "resnet18.onnx")
    trained = load_trained_model(checkpoint)
    images, _ = _tiny_images(5, 32, seed=9)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(result.path), providers=CPU)
    expected = trained.scores(images)
    assert np.abs(expected).max() < 100  # scores of a sane scale: 1e-4 is not below rounding
    for batch in (images[:1], images):
        (scores,) = session.run(None, {"images": batch})
        np.testing.assert_allclose(scores, expected[: len(batch)], rtol=0, atol=TOLERANCE)
    assert result.metadata["backbone"] == "resnet18" and result.metadata["image_size"] == 32
