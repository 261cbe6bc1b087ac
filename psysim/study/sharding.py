"""Shards of one study: a deterministic slice of the samples, so N processes (on one machine
or many) together run exactly the samples of one run.

Shard ``K/N`` takes the samples at positions ``K-1, K-1+N, K-1+2N, ...`` of the task's dataset
(round robin, so shards differ in size by at most one sample). A sample keeps its id, and all
its epochs run in its shard with the seeds of an unsharded run (``seed + epoch``), so the
shards partition the unsharded run's (sample, epoch, seed) exactly.

The shard is a task argument (``-T shard=2/4``), so each shard's logs are their own series
(:mod:`psysim.study.log_series`), and ``psysim-report`` merges the shards of one study back into one
run per epoch (:func:`psysim.study.log_series.select_logs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence, TypeVar

from inspect_ai.dataset import Dataset, MemoryDataset

from psysim.inputs.input_error import TaskArgumentError

SHARD_ARG = "shard"
"""The task argument that names a shard; left out when the shards of a study are merged."""

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: object, field: str = SHARD_ARG) -> "Shard":
        """``"K/N"`` with 1 <= K <= N.

        Raises:
            ValueError: naming ``field`` and the value, when it is not of that form.
        """
        match = _SHARD.match(str(text))
        if match is None:
            raise TaskArgumentError(f"{field} must be K/N (shard K of N, e.g. 2/4); got {text!r}")
        index, count = int(match[1]), int(match[2])
        if not 1 <= index <= count:
            raise TaskArgumentError(f"{field} must be K/N with 1 <= K <= N; got {text!r}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """``shard-K-of-N``: a file or directory name."""
        return f"shard-{self.index}-of-{self.count}"

    def take(self, items: Sequence[T]) -> list[T]:
        """This shard's items, in their order."""
        return list(items[self.index - 1 :: self.count])

    def limit(self, limit: int | None) -> int | None:
        """The number of this shard's samples among the first ``limit`` of the whole dataset.

        Round robin keeps each shard's share of the first ``limit`` samples a prefix of the
        shard, so ``--limit L`` of an unsharded run is ``--limit shard.limit(L)`` in every shard.
        """
        if limit is None:
            return None
        return max(0, -(-(limit - (self.index - 1)) // self.count))


def shard_dataset(dataset: Dataset, shard: str | None) -> Dataset:
    """``dataset`` itself (``shard`` None) or the samples of shard ``shard`` (``"K/N"``).

    Raises:
        ValueError: a malformed ``shard``, or a shard with no samples (more shards than samples).
    """
    if shard is None:
        return dataset
    chosen = Shard.parse(shard)
    samples = chosen.take(list(dataset))
    if not samples:
        raise TaskArgumentError(
            f"{SHARD_ARG} {chosen}: no samples (the dataset '{dataset.name}' has {len(dataset)}, fewer than "
            f"{chosen.count} shards)"
        )
    return MemoryDataset(samples, name=dataset.name, location=dataset.location)
