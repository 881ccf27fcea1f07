"""Benchmarks: offline datasets and the statistics that compare methods.

``load_dataset`` / ``list_datasets`` give the offline tabular suite (see
``shared/DATASETS.md``); ``mean_ranks``, ``friedman_test``, ``nemenyi_test``,
``critical_difference``, ``plot_cd_diagram`` and ``summarize`` implement the
comparison protocol of Demšar (2006). ``run_benchmark`` runs a resumable
dataset x method x fold x seed grid into an SQLite ``ResultStore`` (methods
from ``list_methods`` / ``select_methods``), and ``write_report`` turns a
store into ``report.md`` and figures. These modules do not import torch
themselves: our estimators are imported when a pipeline is built.
"""

from ._datasets import DatasetSpec, list_datasets, load_dataset
from ._methods import OURS_DEFAULTS, Method, list_methods, select_methods
from ._reports import Report, write_report
from ._runner import RunSummary, run_benchmark
from ._stats import (
    critical_difference,
    friedman_test,
    markdown_table,
    mean_ranks,
    nemenyi_test,
    plot_cd_diagram,
    summarize,
)
from ._store import ResultStore, StoreError, integrity_check

__all__ = [
    "DatasetSpec",
    "load_dataset",
    "list_datasets",
    "mean_ranks",
    "friedman_test",
    "nemenyi_test",
    "critical_difference",
    "plot_cd_diagram",
    "summarize",
    "markdown_table",
    "OURS_DEFAULTS",
    "Method",
    "list_methods",
    "select_methods",
    "run_benchmark",
    "RunSummary",
    "ResultStore",
    "StoreError",
    "integrity_check",
    "write_report",
    "Report",
]
