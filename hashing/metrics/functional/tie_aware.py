"""Tie-aware AP (He, Cakir, Bargal, Sclaroff, CVPR 2018): expected AP over random tie orders.

Inside a distance bucket with n items, r of them relevant, after N0 items (R0 relevant) of
smaller distance, a uniformly random order puts a relevant item at in-bucket position j with
probability r/n, and then the relevant items before it number (j-1)(r-1)/(n-1) on average, so
the bucket adds, in expectation,

    (r/n) * sum_{j=1..n} (R0 + 1 + (j-1)(r-1)/(n-1)) / (N0 + j)
  = (r/n) * [ (A - B (N0 + 1)) (H(N0 + n) - H(N0)) + B n ],   A = R0 + 1, B = (r-1)/(n-1),

to the AP numerator (H: harmonic numbers). For AP@ALL the denominator R is fixed, so
AP_T@ALL = (1/R) * sum over buckets. For AP@k the cut falls inside one bucket: given the x
relevant items among its first m = k - N0 positions (hypergeometric), that bucket's part has the
same form with (n, r) -> (m, x) and the denominator is R0 + x; the expectation sums over x.
This is exact, not an approximation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.harmonic import harmonic_table
from hashing.metrics.functional.map_at_k import check_top_ks
from hashing.metrics.functional.ranked_block import RankedBlock
from hashing.metrics.functional.ranked_scan import Backend, query_rows
from hashing.metrics.functional.validation import check_retrieval_inputs, check_top_k


def expected_bucket_numerator(
    before_items: Tensor, before_relevant: Tensor, items: Tensor, relevant: Tensor, harmonic: Tensor
) -> Tensor:
    """Expected sum of precision-at-relevant over a randomly ordered bucket (float64).

    ``items`` (n) and ``relevant`` (r) describe the bucket (or its first m positions, with x
    relevant); ``before_*`` the items ranked ahead of it. Empty buckets give 0.
    """
    n = items.to(torch.float64)
    r = relevant.to(torch.float64)
    n0 = before_items.to(torch.float64)
    a = before_relevant.to(torch.float64) + 1.0
    b = torch.where(n > 1, (r - 1.0) / (n - 1.0).clamp(min=1.0), 0.0)
    span = harmonic[before_items + items] - harmonic[before_items]
    value = (r / n.clamp(min=1.0)) * ((a - b * (n0 + 1.0)) * span + b * n)
    return torch.where(items > 0, value, 0.0)


def log_binomial(n: Tensor, k: Tensor) -> Tensor:
    """log C(n, k) in float64 (-inf outside 0 <= k <= n)."""
    n, k = n.to(torch.float64), k.to(torch.float64)
    value = torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
    return torch.where((k >= 0) & (k <= n), value, -torch.inf)


def expected_ap_cut_inside_bucket(
    n: Tensor, r: Tensor, n0: Tensor, r0: Tensor, prev: Tensor, m: Tensor, harmonic: Tensor
) -> Tensor:
    """E[AP@k] when the cut keeps the first m of a tied bucket's n items (per row).

    x, the relevant items among those m, is hypergeometric(n, r, m); given x, the bucket adds
    the closed form with (n, r) -> (m, x) and the AP denominator is r0 + x.
    """
    x = torch.arange(int(torch.minimum(r, m).max()) + 1, device=n.device)[None, :]
    log_p = (
        log_binomial(r[:, None], x)
        + log_binomial((n - r)[:, None], m[:, None] - x)
        - log_binomial(n, m)[:, None]
    )
    xs = x.expand(n.shape[0], -1)
    part = expected_bucket_numerator(
        n0[:, None].expand_as(xs), r0[:, None].expand_as(xs), m[:, None].expand_as(xs), xs, harmonic
    )
    hits = r0[:, None] + xs
    ap = torch.where(hits > 0, (prev[:, None] + part) / hits.clamp(min=1), 0.0)
    return (torch.exp(log_p) * ap).sum(1)


def tie_aware_average_precision_chunk(
    total: Tensor, relevant: Tensor, top_ks: Sequence[int | None], harmonic: Tensor
) -> Tensor:
    """Tie-aware AP@k (Q, len(top_ks)) float64 from per-distance histograms (Q, bits + 1)."""
    num_queries = total.shape[0]
    num_database = int(total[0].sum()) if num_queries else 0
    cum_items = torch.cumsum(total, 1)
    cum_relevant = torch.cumsum(relevant, 1)
    before_items = cum_items - total
    before_relevant = cum_relevant - relevant
    numerators = expected_bucket_numerator(before_items, before_relevant, total, relevant, harmonic)
    before_numerator = torch.cumsum(numerators, 1) - numerators
    out = torch.zeros(num_queries, len(top_ks), dtype=torch.float64, device=total.device)
    for j, k in enumerate(top_ks):
        cut = num_database if k is None else min(k, num_database)
        # Boundary bucket: the first distance whose cumulative item count reaches the cut.
        bucket = torch.searchsorted(
            cum_items, torch.full((num_queries, 1), cut, device=total.device)
        )
        n = total.gather(1, bucket).squeeze(1)
        r = relevant.gather(1, bucket).squeeze(1)
        n0 = before_items.gather(1, bucket).squeeze(1)
        r0 = before_relevant.gather(1, bucket).squeeze(1)
        prev = before_numerator.gather(1, bucket).squeeze(1)
        m = cut - n0
        # Cut at the bucket's end: its relevant count is fixed, no expectation over x needed.
        at_end = m == n
        out[:, j] = torch.where(
            at_end,
            (prev + numerators.gather(1, bucket).squeeze(1)) / (r0 + r).clamp(min=1),
            0.0,
        )
        inside = (~at_end).nonzero(as_tuple=True)[0]
        if inside.numel():
            out[inside, j] = expected_ap_cut_inside_bucket(
                n[inside], r[inside], n0[inside], r0[inside], prev[inside], m[inside], harmonic
            )
    return out


def tie_aware_average_precision(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_ks: Sequence[int | None] = (None,),
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
) -> Tensor:
    """Per-query tie-aware AP@k, shape (Q, len(top_ks)) float64 (None = ALL)."""
    top_ks = check_top_ks(top_ks)
    check_retrieval_inputs(query_codes, database_codes, query_labels, database_labels)
    harmonic = harmonic_table(database_codes.shape[0])

    def kernel(block: RankedBlock) -> Tensor:
        counts = block.counts
        table = harmonic.to(counts.total.device)
        return tie_aware_average_precision_chunk(counts.total, counts.relevant, top_ks, table)

    return query_rows(
        kernel,
        len(top_ks),
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        positions=False,
        counts=True,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        backend=backend,
    )


def tie_aware_mean_average_precision(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_k: int | None = None,
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
) -> float:
    """Tie-aware mAP@top_k (None = ALL): the expected mAP when ties are ordered at random."""
    check_top_k(top_k)
    ap = tie_aware_average_precision(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        (top_k,),
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        backend=backend,
    )
    if ap.shape[0] == 0:
        raise ValueError("query_codes is empty; mAP needs at least one query")
    return float(ap.mean())
