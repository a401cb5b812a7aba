"""`python -m hashing.report <sweep dir> [more dirs]`: compare runs across methods, bits, seeds.

Collects every run folder under the given folders (:mod:`hashing.report.runs`), aggregates the
finished ones into method x bits x dataset cells with mean ± std over seeds
(:mod:`hashing.report.table`), writes Markdown and CSV tables and PNG plots
(:mod:`hashing.report.plots`), and lists every job that failed or has no metrics.
"""

from hashing.report.runs import RunRecord, collect_runs
from hashing.report.table import Cell, aggregate

__all__ = ["Cell", "RunRecord", "aggregate", "collect_runs"]
