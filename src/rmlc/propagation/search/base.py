"""The interface every search backend implements: :class:`Search`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import torch
from tqdm import tqdm

__all__ = ["Search"]


class Search(ABC):
    """One way of finding each unlabeled row's nearest labeled row.

    A subclass declares what it is (class attributes, read without making one) and
    implements :meth:`nearest`; its entry in :data:`rmlc.propagation.search.SEARCHES` makes
    it known to :func:`rmlc.propagation.propagate_labels`, :func:`index_settings`, the
    training config and the command line.

    Attributes:
        index: the ``index=`` name it serves (several backends may serve one index, as
            ``"exact"``; they declare the same settings).
        backend: the library it runs on, the ``backend=`` name: ``"torch"`` or ``"faiss"``
            (chunk sizes follow :func:`rmlc.propagation.chunk_layout` for it).
        params: its settings (``index_params`` keys), each with its smallest value.
        defaults: the settings' defaults that do not depend on the labeled set; override
            :meth:`settings_for` for those that do.
        exact: whether it always finds the nearest row (ties aside).
        supports_sharded_labeled: whether it can search a labeled set sharded across
            processes chunk by chunk (``labeled_shard_indices``): only a search whose result
            over the union of chunks is the nearest of the chunks' results, i.e. an exact one.
        needs_faiss: whether it needs the faiss package.
    """

    index: ClassVar[str]
    backend: ClassVar[str]
    params: ClassVar[Mapping[str, int]] = {}
    defaults: ClassVar[Mapping[str, int]] = {}
    exact: ClassVar[bool] = True
    supports_sharded_labeled: ClassVar[bool] = True
    needs_faiss: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, int] | None = None) -> None:
        """``settings``: as :func:`index_settings` returns them (checked, defaults filled)."""
        self.settings = dict(settings or {})

    @classmethod
    def settings_for(cls, given: dict[str, int], n_labeled: int | None) -> dict[str, int]:
        """The settings: ``given`` (names and integer types already checked against
        :attr:`params`) over :attr:`defaults`; a subclass whose defaults or ranges depend on
        ``l`` overrides this (``n_labeled`` None: check what does not depend on ``l``).

        Raises:
            ValueError: a setting out of its range for ``l`` labeled samples.
        """
        return {**cls.defaults, **given}

    @classmethod
    def describe(cls) -> str:
        """What the progress bar calls it: ``"torch"``, ``"faiss"``, ``"faiss, ivf"``."""
        return cls.backend if cls.exact else f"{cls.backend}, {cls.index}"

    @abstractmethod
    def nearest(
        self,
        labeled: torch.Tensor,
        unlabeled: torch.Tensor,
        center: torch.Tensor,
        device: torch.device,
        chunk_rows: int,
        block_rows: int,
        bar: tqdm,
    ) -> torch.Tensor:
        """``(u,)`` int64 index of the nearest labeled row of each unlabeled row, on
        ``device``.

        Args:
            labeled: ``(l, d)`` real features, ``l >= 1``, on any device and dtype.
            unlabeled: ``(u, d)`` real features, ``u >= 1``.
            center: ``(d,)`` float64 row to centre both on before ranking (the labeled
                mean): the float32 ranking's rounding then scales with the features' spread.
            device: where the work runs (CUDA when either input is on CUDA).
            chunk_rows: unlabeled rows per step; ``block_rows``: labeled rows per step
                (:func:`rmlc.propagation.chunk_layout`).
            bar: progress bar, advanced by the unlabeled rows done.
        """
