"""Issue 29's check: does scikit-learn's own MLP test file pass on our estimators?

It runs ``sklearn/neural_network/tests/test_mlp.py`` of the *installed*
scikit-learn (found through ``sklearn.__file__``) with only the two class
names rebound: the file is copied into a temporary folder, and its import of
``MLPClassifier`` / ``MLPRegressor`` from ``sklearn.neural_network`` becomes
an import of ``BanditPrunedMLPClassifier`` / ``BanditPrunedMLPRegressor``
from ``skbandit`` under those names. No test body is changed. The estimators
run with their defaults (pruning policy included): this script only measures.

Beside the copy goes a small ``conftest.py``: scikit-learn's
``global_random_seed`` fixture (seed 42 unless
``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` says otherwise, as in scikit-learn's
conftest, which is not copied: its other hooks concern other modules) and a
progress log, so that a run cut off by ``--timeout`` still reports the tests
it finished. pytest runs in a subprocess (``-p no:cacheprovider -q -rf``)
with a ``--junitxml`` report, parsed for the counts and the failure reasons.
Everything is offline: the test file's datasets (digits, iris) are bundled
with scikit-learn.

Output: one line per failing test with a short reason (``[private]`` when the
test reads private internals), the tests that read private internals such as
``_optimizer`` or ``_no_improvement_count`` (exempt under issue 29), skipped
tests, and last, exactly one summary line::

    sklearn_mlp_suite: passed=P failed=F of N

(errors count as failures; skipped tests count in ``N`` only).

Usage::

    python benchmarks/sklearn_mlp_suite.py [--only K_EXPR] [--timeout SECONDS]

``--only`` is passed to pytest as ``-k``; ``--timeout`` bounds the whole run
(tests not finished by then count as failed). The committed output is
``benchmarks/results/sklearn_mlp_suite.txt``.
"""

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = {
    "MLPClassifier": "BanditPrunedMLPClassifier",
    "MLPRegressor": "BanditPrunedMLPRegressor",
}
TEST_FILE = "test_mlp.py"
PROGRESS = "progress.jsonl"
REASON_CHARS = 160
CHAINED = "During handling of the above exception, another exception occurred:"

CONFTEST = '''"""Written by benchmarks/sklearn_mlp_suite.py."""

import json
import os

SEED_VAR = "SKLEARN_TESTS_GLOBAL_RANDOM_SEED"
PROGRESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "{progress}")


def _seeds():
    value = os.environ.get(SEED_VAR)
    if value is None:
        return [42]
    if value == "all":
        return list(range(100))
    if "-" in value:
        start, stop = value.split("-")
        return list(range(int(start), int(stop) + 1))
    return [int(value)]


def pytest_generate_tests(metafunc):
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", _seeds())


def _log(record):
    with open(PROGRESS, "a") as handle:
        handle.write(json.dumps(record) + "\\n")


def pytest_collection_finish(session):
    _log({{"collected": [item.name for item in session.items]}})


def pytest_runtest_logreport(report):
    if report.failed or report.skipped or report.when == "call":
        _log({{"name": report.nodeid.split("::")[-1], "outcome": report.outcome}})
'''


def find_test_file():
    """Path of the installed scikit-learn's MLP test file."""
    import sklearn

    root = os.path.dirname(sklearn.__file__)
    path = os.path.join(root, "neural_network", "tests", TEST_FILE)
    if not os.path.exists(path):
        raise SystemExit(f"no {path}: this scikit-learn ships without its tests")
    return path


def _rebound_import(node):
    """Source lines replacing one ``from sklearn.neural_network... import``."""
    ours = [a for a in node.names if a.name in OURS]
    others = [a for a in node.names if a.name not in OURS]
    lines = []
    if others:
        names = ", ".join(
            a.name + (f" as {a.asname}" if a.asname else "") for a in others
        )
        lines.append(f"from {node.module} import {names}")
    names = ", ".join(f"{OURS[a.name]} as {a.asname or a.name}" for a in ours)
    lines.append(f"from skbandit import {names}")
    return lines


def rebind_classes(source):
    """The test source with the two classes imported from skbandit.

    Every ``from sklearn.neural_network[.<module>] import ...`` naming
    ``MLPClassifier`` or ``MLPRegressor`` is rewritten; both names must be
    rebound, and no other reference to scikit-learn's classes may remain.
    """
    lines = source.splitlines()
    rebound = set()
    imports = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("sklearn.neural_network")
        and any(a.name in OURS for a in node.names)
    ]
    for node in sorted(imports, key=lambda n: n.lineno, reverse=True):
        rebound.update(a.name for a in node.names if a.name in OURS)
        lines[node.lineno - 1 : node.end_lineno] = _rebound_import(node)
    new = "\n".join(lines) + "\n"
    if rebound != set(OURS) or "neural_network.MLP" in new:
        raise SystemExit(f"could not rebind {sorted(set(OURS) - rebound)} cleanly")
    return new


def private_reads(source):
    """``{test name: sorted private attributes}`` for tests touching internals.

    A private attribute is one named ``_x`` (not a dunder) accessed on any
    object inside a ``test_*`` function.
    """
    reads = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test")):
            continue
        attrs = {
            sub.attr
            for sub in ast.walk(node)
            if isinstance(sub, ast.Attribute)
            and sub.attr.startswith("_")
            and not sub.attr.startswith("__")
        }
        if attrs:
            reads[node.name] = sorted(attrs)
    return reads


def prepare(folder, source):
    """Write the rebound test file, its conftest and an empty pytest.ini."""
    with open(os.path.join(folder, TEST_FILE), "w") as handle:
        handle.write(source)
    with open(os.path.join(folder, "conftest.py"), "w") as handle:
        handle.write(CONFTEST.format(progress=PROGRESS))
    with open(os.path.join(folder, "pytest.ini"), "w") as handle:
        handle.write("[pytest]\n")


def run_pytest(folder, only, timeout):
    """Run pytest on the folder; True when it finished within ``timeout``."""
    command = [sys.executable, "-m", "pytest", TEST_FILE]
    command += ["-p", "no:cacheprovider", "-q", "-rf", "-c", "pytest.ini"]
    command += ["--rootdir", folder, "--junitxml", "report.xml"]
    if only:
        command += ["-k", only]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    try:
        subprocess.run(
            command,
            cwd=folder,
            env=env,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return False
    return True


def _short(text):
    """The non-empty lines of a message on one line, shortened."""
    line = " ".join(s.strip() for s in (text or "").splitlines() if s.strip())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 3] + "..."


def _reason(message, text):
    """Short reason: the line of the test file that failed, then the message.

    A bare ``assert`` says nothing in its message (``assert np.False_``), so
    for it the failing statement (the first ``>`` line of the traceback, in
    the test's own frame) stands in for the message. An error raised inside
    ``pytest.warns`` shows as "DID NOT WARN"; the error itself comes first.
    """
    lines = (text or "").splitlines()
    where = next((s.split(":")[1] for s in lines if s.startswith(TEST_FILE + ":")), "?")
    message = (message or "").strip()
    if CHAINED in lines:
        first = next(s[1:].strip() for s in lines if s.startswith("E "))
        message = f"{first} (then: {message})"
    elif message.startswith("assert ") or message == "AssertionError":
        failing = next((s[1:].strip() for s in lines if s.startswith(">")), "")
        message = "assert failed: " + (failing or message)
    return f"line {where}: {_short(message)}"


def parse_junit(path):
    """``[(test name, outcome, reason)]`` from a junit XML report."""
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, reason = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = "skipped" if tag == "skipped" else "failed"
                if tag == "skipped":
                    reason = _short(found.get("message"))
                else:
                    reason = _reason(found.get("message"), found.text)
                if tag == "error":
                    reason = "error: " + reason
                break
        results.append((case.get("name"), outcome, reason))
    return results


def parse_progress(path):
    """Results from the progress log of a run cut off by the timeout."""
    collected, outcomes = [], {}
    if os.path.exists(path):
        with open(path) as handle:
            for record in map(json.loads, handle):
                if "collected" in record:
                    collected = record["collected"]
                elif outcomes.get(record["name"]) != "failed":
                    outcomes[record["name"]] = record["outcome"]
    reason = {"failed": "failed (run cut off: no reason kept)", "skipped": ""}
    return [
        (name, outcomes.get(name, "failed"), reason.get(outcomes.get(name), ""))
        if name in outcomes
        else (name, "failed", "not run: --timeout reached")
        for name in collected
    ]


def _base(name):
    """A test's function name, without its parametrisation."""
    return name.split("[")[0]


def report_lines(results, reads):
    """The report: failures, private readers, skips, then the summary line."""
    lines = []
    for name, outcome, reason in results:
        if outcome == "failed":
            tag = " [private]" if _base(name) in reads else ""
            lines.append(f"FAILED {name}{tag}: {reason}")
    ran = {_base(name) for name, _, _ in results}
    for name, attrs in reads.items():
        if name in ran:
            lines.append(f"private internals (exempt): {name}: {', '.join(attrs)}")
    for name, outcome, reason in results:
        if outcome == "skipped":
            lines.append(f"SKIPPED {name}: {reason}")
    passed = sum(outcome == "passed" for _, outcome, _ in results)
    failed = sum(outcome == "failed" for _, outcome, _ in results)
    total = len(results)
    lines.append(f"sklearn_mlp_suite: passed={passed} failed={failed} of {total}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="pytest -k expression selecting tests")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds for the whole run"
    )
    args = parser.parse_args(argv)
    with open(find_test_file()) as handle:
        original = handle.read()
    reads = private_reads(original)
    with tempfile.TemporaryDirectory(prefix="sklearn_mlp_suite_") as folder:
        prepare(folder, rebind_classes(original))
        finished = run_pytest(folder, args.only, args.timeout)
        report = os.path.join(folder, "report.xml")
        if finished and os.path.exists(report):
            results = parse_junit(report)
        else:
            if not finished:
                print(f"TIMEOUT: the run exceeded --timeout {args.timeout:g} s")
            results = parse_progress(os.path.join(folder, PROGRESS))
    for line in report_lines(results, reads):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
