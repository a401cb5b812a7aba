"""What a scan hands to the metric kernels for one block of queries."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from hashing.metrics.functional.bucket_counts import BucketCounts


class RankedBlock(NamedTuple):
    """One block of queries: relevant items' ranked positions and/or distance histograms.

    The relevant-item tensors are flat and row-major: ``relevant_row[i]`` (0-based row within
    the block) has its ``relevant_rank[i]``-th relevant item at ``relevant_position[i]``
    (both 1-based) of the stable (distance, database index) ranking.
    """

    rows: slice
    num_rows: int
    relevant_row: Tensor | None
    relevant_position: Tensor | None
    relevant_rank: Tensor | None
    counts: BucketCounts | None
