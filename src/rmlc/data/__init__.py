"""Data for rmlc: real images, multi-label mosaics, users' data sets, label noise, splits.

* Fashion-MNIST: :func:`load_fashion_mnist` (IDX files of the Debian package, torchvision
  download, or the subset embedded in the package), :mod:`rmlc.data.idx` for the format.
* Multi-label mosaics with correlated labels: :func:`make_mosaics`, :func:`fashion_mosaic`,
  :class:`CooccurrencePrior`, :data:`OUTFIT_PRIOR`; label statistics:
  :func:`mosaic_statistics`, :func:`format_statistics`.
* Users' data: :func:`load_cifar10`, :func:`load_stl10`, :func:`load_coco`,
  :func:`load_nus_wide`, tags tables (:func:`read_tags_table`, :func:`write_tags_table`),
  :class:`ImageListDataset`, precomputed features (:func:`load_features`), WebDataset
  image shards of a tags table (:func:`write_shards`, :func:`read_shards`).
* Partial labels (tags verified absent, the rest unknown): a tags table's ``negatives``;
  hiding tags as unknown (:func:`hide_tags`, :func:`keep_single_positive`);
  readers of Open Images' and LVIS's verified labels (:func:`read_open_images_labels`,
  :func:`read_lvis_labels`).
* Label noise and splits: :func:`corrupt_labels`, :func:`drop_positives`,
  :func:`corrupt_file`, :func:`split_labeled`, :func:`subsample_multilabel`,
  :func:`train_validation_split`.
"""

from rmlc.data.coco import CocoLabels, load_coco
from rmlc.data.corruption import (
    CorruptionReport,
    DropReport,
    corrupt_labels,
    corrupted_subset,
    drop_positives,
)
from rmlc.data.fashion_mnist import (
    DEBIAN_FASHION_MNIST_ROOT,
    FASHION_MNIST_CLASSES,
    load_embedded_fashion_mnist,
    load_fashion_mnist,
)
from rmlc.data.features import load_features, save_features
from rmlc.data.file_corruption import corrupt_file
from rmlc.data.hiding import HideReport, hide_tags, keep_single_positive
from rmlc.data.idx import read_idx, read_idx_images, read_idx_labels, write_idx
from rmlc.data.image_dataset import (
    BadImageError,
    ImageListDataset,
    check_image_file,
    describe_bad_files,
    scan_image_files,
)
from rmlc.data.label_statistics import (
    format_statistics,
    format_table_statistics,
    mosaic_statistics,
    table_statistics,
)
from rmlc.data.mosaics import (
    OUTFIT_PRIOR,
    CooccurrencePrior,
    Theme,
    fashion_mosaic,
    make_mosaics,
)
from rmlc.data.nus_wide import NusWideLabels, load_nus_wide
from rmlc.data.shards import ShardSet, is_shard_folder, read_shards, write_shards
from rmlc.data.splits import split_labeled, subsample_multilabel, train_validation_split
from rmlc.data.tags_table import TagsTable, read_tags_table, write_tags_table
from rmlc.data.torchvision_sets import (
    CIFAR10_CLASSES,
    STL10_CLASSES,
    LabeledImages,
    load_cifar10,
    load_stl10,
)
from rmlc.data.verified_labels import read_lvis_labels, read_open_images_labels

__all__ = [
    "CIFAR10_CLASSES",
    "DEBIAN_FASHION_MNIST_ROOT",
    "FASHION_MNIST_CLASSES",
    "OUTFIT_PRIOR",
    "STL10_CLASSES",
    "BadImageError",
    "CocoLabels",
    "CooccurrencePrior",
    "CorruptionReport",
    "DropReport",
    "HideReport",
    "ImageListDataset",
    "LabeledImages",
    "NusWideLabels",
    "ShardSet",
    "TagsTable",
    "Theme",
    "check_image_file",
    "corrupt_file",
    "corrupt_labels",
    "corrupted_subset",
    "describe_bad_files",
    "drop_positives",
    "fashion_mosaic",
    "format_statistics",
    "format_table_statistics",
    "hide_tags",
    "is_shard_folder",
    "keep_single_positive",
    "load_cifar10",
    "load_coco",
    "load_embedded_fashion_mnist",
    "load_fashion_mnist",
    "load_features",
    "load_nus_wide",
    "load_stl10",
    "make_mosaics",
    "mosaic_statistics",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_lvis_labels",
    "read_open_images_labels",
    "read_shards",
    "read_tags_table",
    "save_features",
    "scan_image_files",
    "split_labeled",
    "subsample_multilabel",
    "table_statistics",
    "train_validation_split",
    "write_idx",
    "write_shards",
    "write_tags_table",
]
