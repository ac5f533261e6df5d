"""Export a trained network for serving: one ONNX file that takes decoded images.

The graph takes what ``rmlc predict`` feeds the network before normalisation: ``images``,
uint8 ``(batch, C, S, S)`` in 0-255, each image decoded, converted to RGB (``C = 3``) or
greyscale (``C = 1``) and resized to ``S x S`` (PIL, bilinear), with a dynamic batch
dimension. It normalises inside (``(images / 255 - mean) / std``, the checkpoint's
statistics) and returns ``scores``, float32 ``(batch, m)``, the same scores as ``rmlc
predict``. A server only decodes and resizes. The file's ``metadata_props`` say the rest:
class names, image size, channels, mean and std, the threshold and top-k of the checkpoint,
the rmlc version and the source checkpoint's SHA-256 (:data:`METADATA_KEYS`).

onnx, onnxruntime and onnxscript (the dynamo exporter's translator) are the extra
``rmlc[export]``; they are imported on first use.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rmlc.atomic import atomic_write, check_writable
from rmlc.train.data import BatchPreparation
from rmlc.train.trained import TrainedModel, load_trained_model

__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "METADATA_KEYS",
    "OUTPUT_NAME",
    "ExportResult",
    "ServingNetwork",
    "export_onnx",
    "file_sha256",
    "read_metadata",
    "serving_metadata",
]

INPUT_NAME, OUTPUT_NAME = "images", "scores"
# torch's dynamo exporter writes its operators at opset 18 and converts to any other;
# ONNX Runtime reads opset 18 from version 1.14 on.
DEFAULT_OPSET = 18
EXTRA = "pip install 'rmlc[export]'"
# metadata_props key -> meaning; the keys marked JSON hold JSON text, the others plain text.
METADATA_KEYS = {
    "class_names": "JSON list of the m label names, in the order of the scores' columns",
    "image_size": "JSON int S: images are resized to S x S (PIL, bilinear) before the graph",
    "channels": "JSON int C: 3 (converted to RGB) or 1 (converted to greyscale, 'L')",
    "color_mode": "the PIL mode images are converted to before resizing: RGB or L",
    "mean": "JSON list of C floats, subtracted inside the graph after dividing by 255",
    "std": "JSON list of C floats, divided by inside the graph",
    "threshold": "JSON number, list of m numbers (per class) or null: a tag's minimum score",
    "topk": "JSON int: how many top-scored tags rmlc reports per image",
    "single_label": "JSON bool: one class per image (predict the top-scored one)",
    "backbone": "the network's backbone name",
    "input": "the graph's input",
    "output": "the graph's output",
    "rmlc_version": "the rmlc version that exported the file",
    "checkpoint": "the file name of the source checkpoint",
    "checkpoint_sha256": "SHA-256 of the source checkpoint's bytes",
}
_JSON_KEYS = {
    "class_names",
    "image_size",
    "channels",
    "mean",
    "std",
    "threshold",
    "topk",
    "single_label",
}


def _export_packages() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, checking that the dynamo exporter's onnxscript is there too.

    Raises:
        ImportError: naming the missing packages and the extra that installs them.
    """
    missing = [
        name
        for name in ("onnx", "onnxruntime", "onnxscript")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ImportError(f"exporting to ONNX needs {', '.join(missing)} (not installed): {EXTRA}")
    import onnx
    import onnxruntime

    return onnx, onnxruntime


class ServingNetwork(nn.Module):
    """A trained network behind its input normalisation: what the ONNX file computes.

    Shapes:
        ``images`` uint8 ``(N, C, S, S)`` -> scores float32 ``(N, m)``.
    """

    def __init__(self, trained: TrainedModel) -> None:
        super().__init__()
        self.network = trained.model
        normalization = trained.normalization
        # The very transformation rmlc predict applies (no resize: images come at S x S).
        self.preparation = BatchPreparation(normalization["mean"], normalization["std"], None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(self.preparation(images))


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ONNX file.
        metadata: its ``metadata_props`` as :func:`read_metadata` returns them.
        max_difference: largest absolute difference between onnxruntime's scores and
            rmlc's on the check images (NaN when the check was skipped).
    """

    path: Path
    metadata: dict[str, Any]
    max_difference: float


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _rmlc_version() -> str:
    """The installed rmlc's version (``rmlc.__version__`` sits a layer above this module)."""
    try:
        return importlib.metadata.version("rmlc")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def serving_metadata(trained: TrainedModel, checkpoint: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of a checkpoint's ONNX file (keys: :data:`METADATA_KEYS`)."""
    size, channels = int(trained.normalization["size"]), int(trained.in_channels)
    threshold = trained.threshold
    values: dict[str, Any] = {
        "class_names": [str(name) for name in trained.class_names],
        "image_size": size,
        "channels": channels,
        "color_mode": "RGB" if channels == 3 else "L",
        "mean": [float(value) for value in trained.normalization["mean"]],
        "std": [float(value) for value in trained.normalization["std"]],
        "threshold": threshold if threshold is None else np.asarray(threshold).tolist(),
        "topk": int(trained.config.get("topk", 3)),
        "single_label": bool(trained.single_label),
        "backbone": trained.model.name,
        "input": f"{INPUT_NAME}: uint8 (batch, {channels}, {size}, {size}), 0-255, each image "
        f"converted to {'RGB' if channels == 3 else 'L'} and resized to {size} x {size} "
        "(PIL, bilinear); normalised inside the graph",
        "output": f"{OUTPUT_NAME}: float32 (batch, {trained.model.num_classes}) label scores "
        "(a tag when score >= threshold)",
        "rmlc_version": _rmlc_version(),
        "checkpoint": Path(checkpoint).name,
        "checkpoint_sha256": file_sha256(checkpoint),
    }
    return {
        key: json.dumps(value) if key in _JSON_KEYS else str(value) for key, value in values.items()
    }


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``metadata_props`` of an ONNX file, JSON values decoded (:data:`METADATA_KEYS`)."""
    onnx, _ = _export_packages()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {path}")
    model = onnx.load(str(path), load_external_data=False)
    return {
        prop.key: json.loads(prop.value) if prop.key in _JSON_KEYS else prop.value
        for prop in model.metadata_props
    }


def _to_onnx(network: ServingNetwork, trained: TrainedModel, opset: int) -> Any:
    """The ``onnx.ModelProto`` of ``network``, batch dimension dynamic (dynamo exporter)."""
    size = int(trained.normalization["size"])
    example = torch.zeros(2, trained.in_channels, size, size, dtype=torch.uint8)  # batch >= 2:
    batch = torch.export.Dim("batch")  # torch.export fixes dimensions of size 0 and 1
    try:
        program = torch.onnx.export(
            network,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            external_data=False,  # one self-contained file
            verbose=False,
        )
    except Exception as error:
        raise RuntimeError(
            f"torch.onnx.export could not export backbone {trained.model.name!r}: {error}"
        ) from error
    model = program.model_proto
    written = {entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")}
    if written != {opset}:
        raise RuntimeError(f"torch.onnx.export wrote opset {sorted(written)}, not {opset}")
    return model


def _check_against_rmlc(
    onnxruntime: Any, serialized: bytes, trained: TrainedModel, tolerance: float
) -> float:
    """Largest |onnxruntime - rmlc| score on random images, at batch 1 and 3.

    Raises:
        RuntimeError: the difference exceeds ``tolerance`` times the larger of 1 and the
            largest |score| (float32 scores of 10^4 differ by 10^-3 from rounding alone).
    """
    size = int(trained.normalization["size"])
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, trained.in_channels, size, size), generator=generator)
    images = images.to(torch.uint8)
    expected = trained.scores(images)
    session = onnxruntime.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    difference = 0.0
    for batch in (images[:1], images):
        (scores,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
        difference = max(difference, float(np.abs(scores - expected[: len(batch)]).max()))
    allowed = tolerance * max(1.0, float(np.abs(expected).max()))
    if not difference <= allowed:
        raise RuntimeError(
            f"the exported graph's scores differ from rmlc's by {difference:.3g} "
            f"(more than {allowed:.3g}); the file was not written"
        )
    return difference


def export_onnx(
    checkpoint: str | Path,
    path: str | Path,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    tolerance: float = 1e-4,
) -> ExportResult:
    """Export a training checkpoint to an ONNX file for serving (see the module's doc).

    Args:
        checkpoint: ``best.pt`` or ``last.pt`` of ``rmlc train``, or a file of
            ``TrainedModel.save``.
        path: the ``.onnx`` file to write (atomically: a failed export leaves no file).
        opset: the ONNX opset: 18 (the exporter's own, the default) or higher.
        check: run the graph under onnxruntime on random images at batch 1 and 3 and
            compare its scores with rmlc's before writing.
        tolerance: largest score difference the check accepts, relative to the largest
            |score| where that exceeds 1 (absolute below).

    Returns:
        the file, its metadata and the check's largest difference.

    Raises:
        ImportError: onnx, onnxruntime or onnxscript is missing (``rmlc[export]``).
        FileNotFoundError: no checkpoint at ``checkpoint``.
        CheckpointError: ``checkpoint`` is not an rmlc training checkpoint.
        ValueError: ``path`` does not end in ``.onnx``, or ``opset`` is below 18.
        RuntimeError: the export failed, or its scores differ from rmlc's.
    """
    onnx, onnxruntime = _export_packages()
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"the output file must end in .onnx, got {path}")
    if opset < DEFAULT_OPSET:  # torch converts down only by a fallible pass, else keeps 18
        raise ValueError(f"opset must be {DEFAULT_OPSET} or higher, got {opset}")
    trained = load_trained_model(checkpoint)
    check_writable(path.parent)
    model = _to_onnx(ServingNetwork(trained).eval(), trained, opset)
    metadata = serving_metadata(trained, checkpoint)
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = f"rmlc {trained.model.name} tagger; input {metadata['input']}"
    onnx.checker.check_model(model)
    serialized = model.SerializeToString()
    difference = (
        _check_against_rmlc(onnxruntime, serialized, trained, tolerance) if check else float("nan")
    )
    atomic_write(path, lambda stream: stream.write(serialized))
    decoded = {key: json.loads(v) if key in _JSON_KEYS else v for key, v in metadata.items()}
    return ExportResult(path, decoded, difference)
