"""``benchmarks/sklearn_mlp_suite.py`` (issue 29) on two cheap tests.

The whole suite takes minutes; this checks, in seconds, that the script
rebinds the two classes, runs scikit-learn's test file and ends with its
summary line.
"""

import os
import re
import subprocess
import sys

import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "benchmarks",
    "sklearn_mlp_suite.py",
)
SUMMARY = re.compile(r"^sklearn_mlp_suite: passed=(\d+) failed=(\d+) of (\d+)$")
CHEAP = "test_partial_fit_classes_error or test_minimum_input_sample_size"


@pytest.fixture(scope="module")
def suite(benchmark_script):
    return benchmark_script("sklearn_mlp_suite")


def test_rebinds_only_the_two_class_names(suite):
    with open(suite.find_test_file()) as handle:
        original = handle.read()
    rebound = suite.rebind_classes(original)
    assert "from skbandit import BanditPrunedMLPClassifier as MLPClassifier" in (
        rebound
    )
    changed = set(rebound.splitlines()) ^ set(original.splitlines())
    assert all("import" in line for line in changed)


def test_private_reads_found(suite):
    with open(suite.find_test_file()) as handle:
        reads = suite.private_reads(handle.read())
    assert any("_no_improvement_count" in attrs for attrs in reads.values())


# Slow: a fresh pytest in a subprocess imports scikit-learn's test file.
@pytest.mark.slow
def test_summary_line_on_two_cheap_tests():
    out = subprocess.run(
        [sys.executable, SCRIPT, "--only", CHEAP, "--timeout", "120"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout.splitlines()
    summaries = [line for line in out if line.startswith("sklearn_mlp_suite:")]
    assert len(summaries) == 1 and out[-1] == summaries[0]
    passed, failed, total = map(int, SUMMARY.match(out[-1]).groups())
    assert total == 2 and passed + failed == total
    assert sum(line.startswith("FAILED ") for line in out) == failed
