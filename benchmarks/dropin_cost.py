"""Issue 29's cost check: is the drop-in as cheap as scikit-learn's MLP?

Two measurements of ``skbandit bench perf``, timed back to back in one run:

- ``readme_grid``: the README's ``GridSearchCV`` (breast cancer,
  standardised, hidden (64, 64), 4 policies x 2 ratios, 5 folds,
  ``n_jobs=2``) against the same-size search over ``MLPClassifier((64, 64))``
  (8 values of ``alpha``), each after one untimed search with another seed
  (see :func:`skbandit.benchmarks._perf.readme_grid`); target 1.5.
- ``default_fit``: one default fit against scikit-learn's default
  ``MLPClassifier`` trained for the same epochs (205: ``max_iter`` plus
  ``fine_tune_epochs``), on wine, breast cancer and 2000 generated rows, one
  thread (see :func:`skbandit.benchmarks._perf.default_fit`); the ratio is
  the largest of the three, target 2.

It prints the two lines (``name: ratio=<r> target=<t> ok|MISS ...``). The
committed output is ``benchmarks/results/dropin_cost.txt``; time it on an
idle machine (the ratios move with load).

Usage::

    python benchmarks/dropin_cost.py [--repeats 5]
"""

import argparse

from skbandit.benchmarks._execution import thread_limit
from skbandit.benchmarks._perf import default_fit, readme_grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed fits per estimator and data set"
    )
    args = parser.parse_args(argv)
    print(readme_grid(n_jobs=2).line(), flush=True)
    with thread_limit(1):
        print(default_fit(repeats=args.repeats).line(), flush=True)


if __name__ == "__main__":
    main()
