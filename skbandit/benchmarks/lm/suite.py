"""The language-model suite: train, prune heads and MLP channels, measure perplexity.

Each configuration is ``(model, method, 0, seed)``: the model's decoder LM
(see :data:`LM_SETTINGS`) trained once per seed on the BBC News characters
(cached), pruned by ``method`` at the ratio in its name
(``"<method>@<ratio>"``, ``"none"`` for the unpruned model) on
``n_calib`` training windows, then fine-tuned for a short while. Stored per
configuration, in the same SQLite store as the other suites (suite
``"lm"``): the validation perplexity right after pruning (``score``), after
the fine-tune, of the unpruned model, and the seconds of each step.
"""

import dataclasses
import fnmatch
import functools
import math
import time

import numpy as np

from ..._cache import TensorCache
from ..._options import ESTIMATOR_POLICY, recorded_defaults
from ..._random import seeded_global_rng
from .._errors import BenchmarkInputError
from .._execution import check_run_options, evaluate_config, run_suite
from .._names import format_ratio
from .data import SPLIT_SEED, load_lm_data
from .methods import DEFAULT_METHOD, EXTERNAL_BASELINES, LM_METHODS
from .models import DecoderLM, head_groups, lm_groups, mlp_groups

__all__ = [
    "LM_RATIOS",
    "LM_SETTINGS",
    "QUICK_LM",
    "LMSetting",
    "list_lm_methods",
    "lm_protocol",
    "lm_summary",
    "run_lm_benchmark",
    "run_lm_config",
    "train_lm",
    "write_lm_report",
]

#: Fractions of the units removed: of each layer's attention heads and of
#: its MLP channels (``floor(ratio * units)`` of each, the removal rule of
#: ``scope="layer"``).
LM_RATIOS = (0.2, 0.35, 0.5)


@dataclasses.dataclass(frozen=True)
class LMSetting:
    """One model of the suite: architecture, data sizes, training recipe."""

    style: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    seq_len: int
    n_train: int
    n_val: int
    n_calib: int
    epochs: int
    lr: float
    batch_size: int = 32
    ft_windows: int = 512
    ft_lr: float = 1e-3
    pull_batch: int = 16


#: The suite's models: a Llama-style and a GPT-2-style decoder, 3 layers.
LM_SETTINGS = {
    "bbc-llama": LMSetting("llama", 64, 3, 4, 192, 64, 6000, 256, 128, 4, 3e-3),
    "bbc-gpt2": LMSetting("gpt2", 64, 3, 4, 256, 64, 6000, 256, 128, 4, 3e-3),
}

#: --quick: the same corpus, two small models, ratio 0.35, a few methods.
QUICK_LM = {
    "settings": {
        name: LMSetting(
            style,
            d_model=32,
            n_layers=2,
            n_heads=4,  # head_dim 8: 1 of 4 heads goes at 0.35
            d_ff=64,
            seq_len=32,
            n_train=1500,
            n_val=64,
            n_calib=64,
            epochs=3,
            lr=3e-3,
            ft_windows=128,
            pull_batch=8,
        )
        for name, style in (("bbc-llama", "llama"), ("bbc-gpt2", "gpt2"))
    },
    "ratios": (0.35,),
    "methods": ("none", "obs@*", "ucb1@*", "fluct@*", "magnitude@*", "random@*"),
}


def list_lm_methods(ratios=LM_RATIOS):
    """``"none"`` and ``"<method>@<ratio>"`` for every method and ratio.

    Parameters
    ----------
    ratios : sequence of float, default=LM_RATIOS
        The shares of the units (heads and MLP channels) removed (20, 35
        and 50 %).

    Returns
    -------
    list of str

    Examples
    --------
    >>> list_lm_methods((0.5,))[:3]
    ['none', 'obs@0.5', 'obs-owl@0.5']
    """
    return ["none"] + [f"{m}@{format_ratio(r)}" for r in ratios for m in LM_METHODS]


def _resolve_methods(methods, ratios):
    known = list_lm_methods(ratios)
    chosen = []
    for pattern in methods:
        matches = [m for m in known if fnmatch.fnmatchcase(m, pattern)]
        if not matches:
            raise BenchmarkInputError(
                f"unknown lm method {pattern!r}; methods: {', '.join(known)}"
            )
        chosen += [m for m in matches if m not in chosen]
    return chosen


def _parse(method):
    """``(name, ratio)`` of ``"<name>@<ratio>"``; ``("none", 0.0)``."""
    if method == "none":
        return "none", 0.0
    name, _, ratio = method.partition("@")
    return name, float(ratio)


def lm_protocol(settings, budget):
    """What makes lm results comparable (stored with the suite's results)."""
    return {
        "task": "causal_lm",
        "metric": "val_ppl",
        "split": "fixed",
        "split_seed": SPLIT_SEED,
        "units": "heads+mlp_channels",
        "budget": budget,
        "settings": {n: dataclasses.asdict(s) for n, s in settings.items()},
        "pruning_defaults": recorded_defaults(),
        "estimator_policy": ESTIMATOR_POLICY,
    }


def _data(setting):
    return load_lm_data(setting.seq_len, setting.n_train, setting.n_val)


def _make_model(setting, vocab_size, seed):
    with seeded_global_rng(seed):
        return DecoderLM(
            vocab_size,
            setting.d_model,
            setting.n_layers,
            setting.n_heads,
            setting.d_ff,
            setting.seq_len,
            setting.style,
        )


def train_lm(setting, seed=0, memory=None):
    """The trained :class:`DecoderLM` of ``setting`` for ``seed`` and the
    seconds of training (0.0 on a cache hit)."""
    import torch

    from ...pruning import fine_tune

    data = _data(setting)
    cache = TensorCache(memory, "lm-training")
    key = cache.key(setting=dataclasses.asdict(setting), seed=seed)

    def compute():
        model = _make_model(setting, data.vocab_size, seed)
        ids = torch.as_tensor(data.train)
        start = time.perf_counter()
        fine_tune(
            model,
            ids,
            ids,
            loss="causal_lm",
            epochs=setting.epochs,
            lr=setting.lr,
            batch_size=setting.batch_size,
            random_state=seed,
            max_grad_norm=1.0,
        )
        return model.eval(), time.perf_counter() - start

    def decode(state, meta):
        model = _make_model(setting, data.vocab_size, seed)
        model.load_state_dict(state)
        return model.eval(), meta["train_time"]

    (model, seconds), hit = cache.get_or_compute(
        key,
        compute,
        lambda value: (value[0].state_dict(), {"train_time": value[1]}),
        decode,
    )
    return model, 0.0 if hit else seconds


def _perplexity(model, ids):
    from ...pruning import evaluate_loss

    return math.exp(evaluate_loss(model, ids, ids, loss="causal_lm", batch_size=64))


def run_lm_config(dataset, method, seed, settings, budget, cache=None):
    """One configuration: train (or load), prune, measure, fine-tune, measure.

    Returns the values of one results-store row.
    """
    import torch

    from ...pruning import count_parameters, fine_tune, prune

    setting = settings[dataset]
    data = _data(setting)
    model, train_time = train_lm(setting, seed, cache)
    train, val = torch.as_tensor(data.train), torch.as_tensor(data.val)
    calib = train[: setting.n_calib]
    ft = train[
        torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[
            : setting.ft_windows
        ]
    ]
    dense_ppl = _perplexity(model, val)
    name, ratio = _parse(method)
    start = time.perf_counter()
    if name == "none":
        import copy

        pruned = copy.deepcopy(model)
    else:
        spec = LM_METHODS[name]
        options = {"budget": budget, "batch_size": setting.pull_batch}
        pruned, _ = prune(
            model,
            calib,
            None,
            policy=spec.scorer(),
            prune_ratio=ratio,
            loss="causal_lm",
            compensate=spec.compensate,
            scope=spec.scope,
            groups=lm_groups(model),
            random_state=seed,
            **(options if spec.bandit else {}),
        )
    prune_time = time.perf_counter() - start
    ppl_pruned = _perplexity(pruned, val)
    start = time.perf_counter()
    fine_tune(
        pruned,
        ft,
        ft,
        loss="causal_lm",
        epochs=1,
        lr=setting.ft_lr,
        batch_size=setting.batch_size,
        random_state=seed,
        max_grad_norm=1.0,
    )
    ft_time = time.perf_counter() - start
    ppl_ft = _perplexity(pruned, val)
    widths = [g.size for g in mlp_groups(pruned)]
    heads = [g.size for g in head_groups(pruned)]
    return {
        "metric": "val_ppl",
        "score": ppl_pruned,
        "fit_time": prune_time,
        "params_before": count_parameters(model),
        "params_after": count_parameters(pruned),
        "n_train": int(calib.shape[0]),
        "n_test": int(val.shape[0]),
        "extra": {
            "ppl_dense": dense_ppl,
            "ppl_pruned": ppl_pruned,
            "ppl_finetuned": ppl_ft,
            "prune_time": prune_time,
            "finetune_time": ft_time,
            "train_time": train_time,
            "ratio": ratio,
            "mlp_widths": widths,
            "mlp_width_before": setting.d_ff,
            "heads": heads,
            "heads_before": setting.n_heads,
        },
    }


def _evaluate(key, settings, budget, fit_threads, cache):
    dataset, method, _, seed = key
    run = functools.partial(
        run_lm_config, dataset, method, seed, settings, budget, cache
    )
    return evaluate_config(key, run, fit_threads)


def run_lm_benchmark(
    datasets=None,
    methods=None,
    seeds=(0,),
    db=None,
    n_jobs=1,
    quick=False,
    progress=True,
    ratios=None,
    budget=2,
    on_error="record",
    fit_threads=1,
    cache=None,
):
    """Run (or resume) the lm suite: model x method x seed.

    Parameters
    ----------
    datasets : sequence of str, default=None
        Names of :data:`LM_SETTINGS` (default: both).
    methods : sequence of str, default=None
        Names or globs of :func:`list_lm_methods` (default: all; the quick
        ones with ``quick``).
    seeds : sequence of int, default=(0,)
    db : str, default=None
        SQLite results file (default ``bench_out/lm.sqlite``, or
        ``bench_out/lm-quick.sqlite``).
    n_jobs : int, default=1
    quick : bool, default=False
        The small models, ratio 0.35 and the methods of :data:`QUICK_LM`.
    progress : bool, default=True
    ratios : sequence of float, default=None
        Prune ratios of the heads and MLP channels (default
        :data:`LM_RATIOS`; 0.35 with ``quick``).
    budget : float, default=2
        Average pulls per unit of the bandit (a pull runs the whole LM).
    on_error : {"record", "raise"}, default="record"
    fit_threads : int, default=1
    cache : str, default=None
        Cache folder of the trained models.

    Returns
    -------
    RunSummary

    Examples
    --------
    The quick run (two small decoders, ratio 0.35, the quick methods; about
    10 seconds on a CPU), then its summary lines:

    >>> summary = run_lm_benchmark(  # doctest: +SKIP
    ...     quick=True, db="bench_out/lm-quick.sqlite"
    ... )
    >>> for line in lm_summary("bench_out/lm-quick.sqlite"):  # doctest: +SKIP
    ...     print(line)
    lm: ratio=0.35 default_ppl=... best_baseline=... default_le_best=...
    """
    from joblib import delayed

    seeds, n_jobs, _ = check_run_options(on_error, seeds, n_jobs, None, None)
    settings = QUICK_LM["settings"] if quick else LM_SETTINGS
    if ratios is None:
        ratios = QUICK_LM["ratios"] if quick else LM_RATIOS
    datasets = list(dict.fromkeys(datasets or settings))
    for name in datasets:
        if name not in settings:
            raise BenchmarkInputError(
                f"unknown lm model {name!r}; models: {', '.join(settings)}"
            )
    if methods is None:
        methods = QUICK_LM["methods"] if quick else ("*",)
    methods = _resolve_methods(methods, ratios)
    grid = [(d, m, 0, s) for d in datasets for s in seeds for m in methods]
    return run_suite(
        "lm",
        grid,
        lambda todo: (
            delayed(_evaluate)(key, settings, budget, fit_threads, cache)
            for key in todo
        ),
        db=db,
        quick=quick,
        protocol=lm_protocol(settings, budget),
        n_jobs=n_jobs,
        backend=None,
        scheduler=None,
        progress=progress,
        on_error=on_error,
    )


def _units_table(rows, methods, ratios):
    """Heads and MLP channels left (summed over layers, mean over seeds)
    per method and ratio; nothing for a store without head counts."""
    if not all(isinstance(e, dict) and "heads" in e for e in rows["extra"]):
        return []
    heads = rows["extra"].map(lambda e: sum(e["heads"]))
    channels = rows["extra"].map(lambda e: sum(e["mlp_widths"]))
    first = rows["extra"].iloc[0]
    layers = len(first["heads"])
    lines = [
        f"Units left (of {layers * first['heads_before']} heads and "
        f"{layers * first['mlp_width_before']} MLP channels, summed over the "
        f"{layers} layers, mean over seeds):",
        "",
        "| method | "
        + " | ".join(
            f"{format_ratio(r)} heads | {format_ratio(r)} channels" for r in ratios
        )
        + " |",
        "|---" * (1 + 2 * len(ratios)) + "|",
    ]
    for name in methods[1:]:
        cells = []
        for r in ratios:
            at = (rows["name"] == name) & np.isclose(rows["ratio"].astype(float), r)
            if not at.any():
                cells += ["", ""]
                continue
            cells += [f"{heads[at].mean():g}", f"{channels[at].mean():g}"]
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def _paired_table(frame, methods):
    """The default against each method, paired by model and seed: wins,
    losses and ties in perplexity right after pruning, and the exact sign
    test's p-value (two-sided, ties left out) adjusted by Holm over the
    ratios."""
    from scipy.stats import binomtest

    from .._stats import holm_adjust

    ratios = sorted(r for r in frame["ratio"].unique() if r > 0)
    pairs = frame.pivot_table(
        index=["dataset", "seed"], columns=["ratio", "name"], values="ppl_pruned"
    )
    lines = [
        f"## Paired: `{DEFAULT_METHOD}` against each method",
        "",
        "Per model and seed, right after pruning: the default's wins / losses / "
        "ties (lower perplexity wins), and the exact two-sided sign test's "
        "p-value over the decided pairs, Holm-adjusted over the ratios. The "
        "pairs are models x seeds, not independent datasets.",
        "",
        "| method | " + " | ".join(format_ratio(r) for r in ratios) + " |",
        "|---" * (1 + len(ratios)) + "|",
    ]
    for name in methods:
        if name in ("none", DEFAULT_METHOD):
            continue
        counts, pvalues = [], []
        for r in ratios:
            if (r, name) not in pairs or (r, DEFAULT_METHOD) not in pairs:
                counts.append(None)
                pvalues.append(1.0)
                continue
            both = pairs[[(r, DEFAULT_METHOD), (r, name)]].dropna()
            diff = both[(r, name)] - both[(r, DEFAULT_METHOD)]
            wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
            counts.append((wins, losses, len(diff) - wins - losses))
            decided = wins + losses
            pvalues.append(binomtest(wins, decided).pvalue if decided else 1.0)
        if all(c is None for c in counts):
            continue
        cells = [
            "" if c is None else f"{c[0]}/{c[1]}/{c[2]}, p = {p:.3g}"
            for c, p in zip(counts, holm_adjust(pvalues))
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def _frame(db):
    from .._store import ResultStore

    with ResultStore(db, create=False) as store:
        frame = store.results_frame("lm")
    for field in ("ppl_dense", "ppl_pruned", "ppl_finetuned", "prune_time", "ratio"):
        frame[field] = [e.get(field) for e in frame["extra"]]
    frame["name"] = [_parse(m)[0] for m in frame["method"]]
    return frame


def lm_summary(db, ratio=0.35):
    """The summary lines at ``ratio``: per model and over the models
    (geometric mean of the perplexities, mean over seeds first).

    Parameters
    ----------
    db : str or path-like
        A results store of :func:`run_lm_benchmark`.
    ratio : float, default=0.35
        The prune ratio the lines compare the default and the baselines at.

    Returns
    -------
    list of str
        ``lm: ratio=<r> default_ppl=<x> best_baseline=<name>
        best_baseline_ppl=<y> default_le_best=<yes|no> model=<name>``, one
        per model and one pooled (``model=all(geomean)``).

    Examples
    --------
    >>> for line in lm_summary("benchmarks/results/lm.sqlite"):  # doctest: +SKIP
    ...     print(line)
    lm: ratio=0.35 default_ppl=7.457 best_baseline=tp-taylor ... model=bbc-gpt2
    """
    frame = _frame(db)
    frame = frame[np.isclose(frame["ratio"].astype(float), ratio)]
    lines, ours, theirs = [], {}, {}
    for dataset, rows in frame.groupby("dataset"):
        means = rows.groupby("name")["ppl_pruned"].mean()
        if DEFAULT_METHOD not in means:
            continue
        base = means[[n for n in EXTERNAL_BASELINES if n in means]]
        if base.empty:
            continue
        ours[dataset], theirs[dataset] = means[DEFAULT_METHOD], base
        best = base.idxmin()
        lines.append(_line(ratio, means[DEFAULT_METHOD], best, base[best], dataset))
    if ours:
        gm = math.exp(np.mean([math.log(v) for v in ours.values()]))
        common = set.intersection(*(set(b.index) for b in theirs.values()))
        if common:
            pooled = {
                n: math.exp(np.mean([math.log(b[n]) for b in theirs.values()]))
                for n in common
            }
            best = min(pooled, key=pooled.get)
            lines.insert(0, _line(ratio, gm, best, pooled[best], None))
    return lines


def _line(ratio, default, best, best_ppl, dataset):
    line = (
        f"lm: ratio={format_ratio(ratio)} default_ppl={default:.3f} "
        f"best_baseline={best} best_baseline_ppl={best_ppl:.3f} "
        f"default_le_best={'yes' if default <= best_ppl else 'no'}"
    )
    return line + (f" model={dataset}" if dataset else " model=all(geomean)")


def write_lm_report(db, out, command=None):
    """Write ``<out>/report.md`` from the store; return its text.

    Parameters
    ----------
    db : str or path-like
        A results store of :func:`run_lm_benchmark`.
    out : str or path-like
        The folder of ``report.md`` (created if missing).
    command : str, default=None
        The command that made the store, quoted in the report.

    Returns
    -------
    str
        The report's markdown.

    Examples
    --------
    >>> text = write_lm_report(  # doctest: +SKIP
    ...     "benchmarks/results/lm.sqlite", "benchmarks/results/lm"
    ... )
    """
    import os

    frame = _frame(db)
    lines = ["# Language-model pruning benchmark (`skbandit bench lm`)", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        "Validation perplexity of small decoder LMs trained on BBC News "
        "characters, after removing a fraction of the attention heads and of "
        'the MLP channels of every layer ("pruned"), then after a short '
        'fine-tune (one pass over training windows, "ft"), and the seconds '
        "pruning took (2 shared CPU cores, one thread). Mean over seeds. Lower "
        "perplexity is better.",
        "",
    ]
    methods = ["none", *LM_METHODS]
    for dataset, rows in frame.groupby("dataset"):
        ratios = sorted(r for r in rows["ratio"].unique() if r > 0)
        dense = rows["ppl_dense"].mean()
        seeds = sorted(rows["seed"].unique())
        lines += [
            f"## {dataset}",
            "",
            f"Unpruned: perplexity {dense:.3f} (seeds {', '.join(map(str, seeds))}).",
            "",
        ]
        header = (
            "| method | "
            + " | ".join(
                f"{format_ratio(r)} pruned | {format_ratio(r)} ft | {format_ratio(r)} s"
                for r in ratios
            )
            + " |"
        )
        lines += [header, "|---" * (1 + 3 * len(ratios)) + "|"]
        for name in methods:
            mine = rows[rows["name"] == name]
            if mine.empty:
                continue
            if name == "none":  # the same numbers at every ratio
                dense_cells = [
                    f"{mine['ppl_dense'].mean():.3f}",
                    f"{mine['ppl_finetuned'].mean():.3f}",
                    "0",
                ]
                lines.append(
                    "| none (unpruned) | "
                    + " | ".join(dense_cells * len(ratios))
                    + " |"
                )
                continue
            cells = []
            for r in ratios:
                at = mine[np.isclose(mine["ratio"], r)]
                if at.empty:
                    cells += ["", "", ""]
                else:
                    cells += [
                        f"{at['ppl_pruned'].mean():.3f}",
                        f"{at['ppl_finetuned'].mean():.3f}",
                        f"{at['prune_time'].mean():.2f}",
                    ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += _units_table(rows, methods, ratios)
    lines += _paired_table(frame, methods)
    lines += ["## Methods", ""]
    lines += [f"- `{n}`: {m.description}" for n, m in LM_METHODS.items()]
    lines += [
        "",
        'Notes: the `none` row\'s "ft" is the unpruned model after the same '
        "fine-tune (the models are small and still improve with more "
        "training). Units are each layer's attention heads (a head: its "
        "head_dim rows of q, k and v and columns of o) and its MLP channels. "
        "The `-owl` rows remove floor(r x all units) in total (scope global), "
        "split over heads and channels in proportion to their numbers, then "
        "over each kind's groups by OWL's ratios; the others floor(r x units) "
        "of every group: "
        "with 4 heads per layer that is 0 heads at 20 %, 1 at 35 % and 2 at "
        "50 % (see the units table). Every method scores heads: `obs` by the "
        "block form of its cost (a head's head_dim columns of o together), "
        "`fluct` by the sum of its features' fluctuations, `magnitude` by the "
        "norm of the head's query rows, `tp-*` by the sum of Torch-Pruning's "
        "importances over the head's indices (Torch-Pruning couples q, k, v "
        "rows and o columns index by index; it does not know heads); `ucb1` "
        "pulls heads masked at their mean (its refit pulls are rank-1, for "
        "one-column units) and refits o when it removes them. `fluct`'s bias "
        "compensation (compensate='mean') folds one mean per head, over its "
        "features, into o's bias, not one per feature as FLAP does. `ucb1` "
        "pulls 2 times per unit (each pull runs the whole LM). Seconds are "
        "wall time on shared cores.",
    ]
    lines += ["", "## Summary at 35 %", "", "```"]
    lines += lm_summary(db) or ["(no results at ratio 0.35)"]
    lines += ["```", ""]
    text = "\n".join(lines)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.md"), "w") as file:
        file.write(text)
    return text
