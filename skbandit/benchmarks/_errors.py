"""The errors a benchmark raises for input it cannot run.

The command line reports these (and an unusable results store or an
unreachable Dask scheduler) as one line with exit status 2; any other
exception is a bug and keeps its traceback. Both subclass the builtin a
library caller would expect, so ``except ValueError`` keeps working.
"""

__all__ = ["BenchmarkInputError", "MissingDependencyError"]


class BenchmarkInputError(ValueError):
    """An unknown suite, dataset, task or method, or an unusable setting.

    Parameters
    ----------
    message : str
    parameter : str, optional
        The argument of the run that is wrong (e.g. ``"n_folds"``), for the
        command line to name its option.

    Examples
    --------
    >>> from skbandit.benchmarks import get_spec
    >>> try:
    ...     get_spec("no-such-dataset")
    ... except ValueError as exc:
    ...     print(type(exc).__name__)
    BenchmarkInputError
    """

    def __init__(self, message, parameter=None):
        super().__init__(message)
        self.parameter = parameter


class MissingDependencyError(ImportError):
    """An optional package that a dataset, task or backend needs is missing.

    Examples
    --------
    >>> issubclass(MissingDependencyError, ImportError)
    True
    """
