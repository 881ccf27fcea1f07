"""The errors a benchmark raises for input it cannot run.

The command line reports these (and an unusable results store or an
unreachable Dask scheduler) as one line with exit status 2; any other
exception is a bug and keeps its traceback. Both subclass the builtin a
library caller would expect, so ``except ValueError`` keeps working.
"""

__all__ = ["BenchmarkInputError", "MissingDependencyError"]


class BenchmarkInputError(ValueError):
    """An unknown suite, dataset, task or method, or an unusable setting.

    Examples
    --------
    >>> from skbandit.benchmarks import get_spec
    >>> try:
    ...     get_spec("no-such-dataset")
    ... except ValueError as exc:
    ...     print(type(exc).__name__)
    BenchmarkInputError
    """


class MissingDependencyError(ImportError):
    """An optional package that a dataset, task or backend needs is missing.

    Examples
    --------
    >>> issubclass(MissingDependencyError, ImportError)
    True
    """
