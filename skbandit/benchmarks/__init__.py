"""Benchmarks: offline datasets, resumable runs, the statistics that compare methods.

``load_dataset`` / ``list_datasets`` give the offline tabular suite (see
``shared/DATASETS.md``); ``mean_ranks``, ``friedman_test``, ``nemenyi_test``,
``critical_difference``, ``plot_cd_diagram`` and ``summarize`` implement the
comparison protocol of Demšar (2006). ``run_benchmark`` runs a resumable
dataset x method x fold x seed grid into an SQLite ``ResultStore`` (methods
from ``list_methods`` / ``select_methods``, named by the grammar of
``parse_method_name``), ``run_deep_benchmark`` does the same for the deep
suite (:mod:`skbandit.benchmarks.deep`), ``run_lm_benchmark`` for the
language-model suite (:mod:`skbandit.benchmarks.lm`), and ``write_report``
(``write_lm_report``) turns a store into ``report.md`` and figures.

Every name is imported on first use: listing datasets or methods, or the
command line's ``--help``, does not load torch or pandas.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "._datasets": ("DatasetSpec", "get_spec", "list_datasets", "load_dataset"),
        "._errors": ("BenchmarkInputError", "MissingDependencyError"),
        "._execution": ("BACKENDS", "RunSummary", "SchedulerError", "default_paths"),
        "._methods": (
            "DEFAULT_RATIOS",
            "Method",
            "OURS_DEFAULTS",
            "list_methods",
            "ours_method",
            "select_methods",
        ),
        "._names": ("MethodName", "parse_method_name"),
        "._perf": ("MEASUREMENTS", "Measurement"),
        "._reports": ("Report", "write_report"),
        "._stats": (
            "critical_difference",
            "friedman_test",
            "holm_adjust",
            "markdown_table",
            "mean_ranks",
            "nemenyi_test",
            "plot_cd_diagram",
            "summarize",
            "wilcoxon_holm",
        ),
        "._store": ("ResultStore", "StoreError", "integrity_check"),
        "._tabular": ("QUICK", "SUITES", "run_benchmark"),
        ".deep": (
            "DEEP_TASKS",
            "list_deep_methods",
            "list_deep_tasks",
            "run_deep_benchmark",
        ),
        ".lm.suite": (
            "LM_SETTINGS",
            "QUICK_LM",
            "list_lm_methods",
            "lm_summary",
            "run_lm_benchmark",
            "write_lm_report",
        ),
    },
)
