"""Where a run's data comes from: one module per source, one registry of them.

Each source module has a ``read(config)`` returning a
:class:`~rmlc.train.sources.registry.SourceRows` and an ``ENTRY``; the built-in ones are
registered here: ``fashion-mosaic``, ``fashion-mnist``, ``cifar10``, ``stl10``, ``coco``,
``nus-wide`` and ``tags`` (tags tables and shard folders). Images in memory
(:func:`rmlc.train.fit`) are a :class:`SourceRows` made by the caller. A new source is one
module and one :func:`register_source` call.
"""

from __future__ import annotations

from rmlc.train.sources import (
    cifar10,
    coco,
    fashion_mnist,
    fashion_mosaic,
    nus_wide,
    stl10,
    tags,
)
from rmlc.train.sources.registry import (
    SOURCE_KEYS,
    SOURCES,
    SourceEntry,
    SourceRows,
    SourceSplit,
    check_source_keys,
    register_source,
    source_entry,
    unregister_source,
)

__all__ = [
    "SOURCES",
    "SOURCE_KEYS",
    "SourceEntry",
    "SourceRows",
    "SourceSplit",
    "check_source_keys",
    "register_source",
    "source_entry",
    "unregister_source",
]

for _module in (fashion_mosaic, fashion_mnist, cifar10, stl10, coco, nus_wide, tags):
    register_source(_module.ENTRY)
del _module
