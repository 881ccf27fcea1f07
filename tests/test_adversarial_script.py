"""The case machinery of ``benchmarks/adversarial.py`` on a few cheap cases.

The script itself takes minutes; this checks, in seconds, that its
classification and its summary line (parsed by other checks) work.
"""

import os
import re

import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "benchmarks",
    "adversarial.py",
)
SUMMARY = re.compile(
    r"^adversarial: tried=(\d+) clear=(\d+) correct=(\d+) unclear=(\d+) "
    r"silent=(\d+) blowup=(\d+) exec=(\d+)$"
)


@pytest.fixture(scope="module")
def adversarial(benchmark_script):
    return benchmark_script("adversarial")


def _raise(exc):
    def action(ctx):
        raise exc

    return action


def test_cheap_cases_classify_and_summarise(adversarial, tmp_path):
    a = adversarial
    by_id = {case.id: case for case in a.build_cases()}
    cases = [
        # Real cases that fail before any training.
        by_id["param-clf-prune_ratio=1.5"],
        by_id["load-crafted-pickle"],
        # Synthetic ones, one per remaining class.
        a.Case(
            "fake-correct", lambda ctx: 2, a.Expect(check=a.returns(lambda v: v == 2))
        ),
        a.Case("fake-silent", lambda ctx: 3, a.Expect(r"three")),
        a.Case("fake-unclear", _raise(RuntimeError("three")), a.Expect(r"three")),
        a.Case("fake-blowup", _raise(a.Blowup("timeout")), a.Expect(r"x")),
        a.Case(
            "fake-exec",
            lambda ctx: __import__("pickle").loads(a.crafted_pickle(ctx)),
            a.Expect(r"x"),
        ),
    ]
    lines = []
    results = a.run_cases(cases, str(tmp_path), jobs=1, emit=lines.append)
    got = {r.id: r.cls for r in results}
    assert got == {
        "param-clf-prune_ratio=1.5": "clear",
        "load-crafted-pickle": "clear",
        "fake-correct": "correct",
        "fake-silent": "silent",
        "fake-unclear": "unclear",
        "fake-blowup": "blowup",
        "fake-exec": "exec",
    }
    assert all(
        re.match(r"^case \S+: (clear|correct|unclear|silent|blowup|exec) ", s)
        for s in lines
    )
    match = SUMMARY.match(a.summary_line(results))
    assert match, a.summary_line(results)
    counts = list(map(int, match.groups()))
    assert counts == [7, 2, 1, 1, 1, 1, 1]
    assert counts[0] == sum(counts[1:])


def test_the_table_has_enough_unique_cases(adversarial):
    ids = [case.id for case in adversarial.build_cases()]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids)
