"""Benchmarks: offline datasets and the statistics that compare methods.

``load_dataset`` / ``list_datasets`` give the offline tabular suite (see
``shared/DATASETS.md``); ``mean_ranks``, ``friedman_test``, ``nemenyi_test``,
``critical_difference``, ``plot_cd_diagram`` and ``summarize`` implement the
comparison protocol of Demšar (2006). Importing this package does not import
torch.
"""

from ._datasets import DatasetSpec, list_datasets, load_dataset
from ._stats import (
    critical_difference,
    friedman_test,
    markdown_table,
    mean_ranks,
    nemenyi_test,
    plot_cd_diagram,
    summarize,
)

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
]
