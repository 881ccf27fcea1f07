"""The method-name grammar every suite, report and the command line share.

One of our pruning methods is named
``<policy>@<ratio>[:<compensate>][/ft<epochs>][+<pull>]``, for example
``"ucb1@0.5"``, ``"magnitude@0.75:lstsq/ft0"`` or
``"thompson@0.5:mean/ft0+set"``; the unpruned network is ``"none"``
(``"none/ft<epochs>"``: trained for that many extra epochs, ``"none/ft0"``
the trained network itself, the control of methods without fine-tuning). The
policy is a name of :data:`skbandit._options.METHOD_NAMES` or of
:data:`EXTERNAL` (scorers from other libraries); the ratio lies in (0, 1);
the optional parts override the suite's compensation, fine-tuning epochs and
pull scheme. The ratio ``auto`` (``"obs@auto"``) is the estimators'
``prune_ratio="auto"``: the size found on validation rows within their
default ``max_score_drop`` (tabular and regression suites only).
"""

import dataclasses
import re

from .._options import (
    BASELINE_NAMES,
    COMPENSATIONS,
    POLICY_NAMES,
    PULLS,
    UNPRUNED,
    check_prune_ratio,
)
from ._errors import BenchmarkInputError

__all__ = [
    "AUTO",
    "EXTERNAL",
    "SCRATCH",
    "PAPER",
    "PRUNING_POLICIES",
    "MethodName",
    "parse_method_name",
    "check_method_ratio",
    "format_ratio",
    "DISPLAY_NAMES",
    "display_name",
]

#: Scorers from other libraries, by the name a method uses: Torch-Pruning's
#: group magnitude and first-order Taylor criteria (``"tp_taylor@0.5"``).
EXTERNAL = ("tp_magnitude", "tp_taylor")

#: Not pruning at all: a network of the pruned size trained from scratch for
#: the same total epochs (``"scratch@0.75"``), the question every user asks.
SCRATCH = "scratch"

#: The paper's configuration (:data:`skbandit._options.PAPER_SETTINGS`) at a
#: ratio: ``"paper@0.5"``, a row of every benchmark.
PAPER = "paper"

#: The ratio of a method that finds its own size (``"obs@auto"``).
AUTO = "auto"

#: Every policy a pruning method name may carry.
PRUNING_POLICIES = (*POLICY_NAMES, *BASELINE_NAMES, *EXTERNAL, SCRATCH, PAPER)

_GRAMMAR = re.compile(
    rf"^(?P<policy>[a-z_0-9]+)@(?P<ratio>{AUTO}|[0-9.eE+-]+)"
    rf"(?::(?P<compensate>{'|'.join(COMPENSATIONS)}))?"
    r"(?:/ft(?P<ft>[0-9]+))?"
    rf"(?:\+(?P<pull>{'|'.join(PULLS)}))?$"
)


_UNPRUNED_GRAMMAR = re.compile(rf"^{UNPRUNED}(?:/ft(?P<ft>[0-9]+))?$")


def format_ratio(ratio):
    """The ratio as a method name writes it (``0.5``, ``0.25``, ``auto``)."""
    return AUTO if ratio == AUTO else format(ratio, "g")


def check_method_ratio(ratio):
    """``ratio`` as a float in (0, 1): a pruning method removes something."""
    try:
        checked = check_prune_ratio(float(ratio))
    except (TypeError, ValueError):
        checked = None
    if not checked:  # None (invalid) or 0.0 (removes nothing)
        raise BenchmarkInputError(f"prune ratios must lie in (0, 1), got {ratio!r}")
    return checked


@dataclasses.dataclass(frozen=True)
class MethodName:
    """One of our methods, parsed.

    Attributes
    ----------
    policy : str
        A policy, baseline, external scorer or ``"none"``.
    prune_ratio : float, "auto" or None
        None for ``"none"``; ``"auto"`` for a bandit policy or baseline
        that finds its size.
    compensate : str or None
        None: the suite's default.
    fine_tune_epochs : int or None
        None: the suite's default.
    pull : {"company", "single", "set"} or None
        None: the suite's default (``DEFAULTS.pull``).

    Examples
    --------
    >>> str(MethodName("ucb1", 0.5, compensate="lstsq", fine_tune_epochs=0))
    'ucb1@0.5:lstsq/ft0'
    >>> str(MethodName("none"))
    'none'
    """

    policy: str
    prune_ratio: float = None
    compensate: str = None
    fine_tune_epochs: int = None
    pull: str = None

    def __post_init__(self):
        if self.fine_tune_epochs is not None:
            object.__setattr__(self, "fine_tune_epochs", int(self.fine_tune_epochs))
        if self.policy == UNPRUNED:
            # Its fine-tuning epochs are the extra epochs it trains: "none/ft0"
            # is the trained network itself, the fair control without fine-tuning.
            if (self.prune_ratio, self.compensate, self.pull) != (None, None, None):
                raise ValueError(
                    "the unpruned method 'none' takes no prune ratio, "
                    "compensation or pull scheme"
                )
            return
        if self.policy not in PRUNING_POLICIES:
            raise ValueError(
                f"unknown policy {self.policy!r}; valid: "
                f"{', '.join((UNPRUNED, *PRUNING_POLICIES))}"
            )
        if self.prune_ratio is None:
            raise ValueError(f"policy {self.policy!r} needs a prune ratio")
        if self.prune_ratio == AUTO:
            if self.policy not in (*POLICY_NAMES, *BASELINE_NAMES):
                raise ValueError(
                    f"{self.policy!r} has no size search: '@{AUTO}' takes a "
                    "bandit policy or a baseline"
                )
        else:
            ratio = check_method_ratio(self.prune_ratio)
            object.__setattr__(self, "prune_ratio", ratio)
        if self.compensate is not None and self.compensate not in COMPENSATIONS:
            raise ValueError(
                f"compensate must be one of {COMPENSATIONS}, got {self.compensate!r}"
            )
        if self.pull is not None and self.pull not in PULLS:
            raise ValueError(f"pull must be one of {PULLS} or None, got {self.pull!r}")
        if self.policy in (SCRATCH, PAPER) and (self.compensate or self.pull):
            # Scratch removes nothing; the paper's settings fix both.
            raise ValueError(f"{self.policy!r} takes no compensation or pull scheme")

    def settings(self):
        """The pruning settings the name fixes, as keyword arguments.

        Examples
        --------
        >>> parse_method_name("ucb1@0.5:lstsq/ft0").settings()
        {'prune_ratio': 0.5, 'compensate': 'lstsq', 'fine_tune_epochs': 0}
        """
        settings = {
            "prune_ratio": self.prune_ratio,
            "compensate": self.compensate,
            "fine_tune_epochs": self.fine_tune_epochs,
            "pull": self.pull,
        }
        return {k: v for k, v in settings.items() if v is not None}

    def __str__(self):
        name = self.policy
        if self.prune_ratio is not None:
            name += f"@{format_ratio(self.prune_ratio)}"
        if self.compensate is not None:
            name += f":{self.compensate}"
        if self.fine_tune_epochs is not None:
            name += f"/ft{self.fine_tune_epochs}"
        if self.pull is not None:
            name += f"+{self.pull}"
        return name


def parse_method_name(name):
    """The :class:`MethodName` that ``name`` spells, or None if it is none of ours.

    Parameters
    ----------
    name : str
        A benchmark method name, e.g. ``"none"``, ``"ucb1@0.5"`` or
        ``"ucb1@0.5:lstsq/ft2+set"``.

    Examples
    --------
    >>> parse_method_name("ucb1@0.5")
    MethodName(policy='ucb1', prune_ratio=0.5, compensate=None, \
fine_tune_epochs=None, pull=None)
    >>> parse_method_name("none").policy
    'none'
    >>> parse_method_name("none/ft0").fine_tune_epochs
    0
    >>> parse_method_name("sk_knn") is None
    True
    >>> parse_method_name("ucb1@1.5") is None
    True
    >>> parse_method_name("obs@auto").prune_ratio
    'auto'
    """
    unpruned = _UNPRUNED_GRAMMAR.match(name)
    if unpruned is not None:
        return MethodName(UNPRUNED, fine_tune_epochs=unpruned["ft"])
    match = _GRAMMAR.match(name)
    if match is None or match["policy"] not in PRUNING_POLICIES:
        return None
    try:
        return MethodName(
            match["policy"],
            match["ratio"] if match["ratio"] == AUTO else float(match["ratio"]),
            match["compensate"],
            match["ft"],
            match["pull"],
        )
    except ValueError:
        return None


#: Readable names of every policy, baseline, external scorer, control and
#: scikit-learn peer, the one mapping reports and documentation tables use
#: (:func:`display_name` composes them with a method's ratio and options).
DISPLAY_NAMES = {
    UNPRUNED: "Unpruned network",
    "epsilon_greedy": "ε-greedy bandit",
    "softmax": "Softmax bandit",
    "ucb1": "UCB1",
    "thompson": "Thompson sampling",
    "gaussian_thompson": "Gaussian Thompson sampling",
    "hedge": "Hedge",
    "exp3": "EXP3",
    "uniform": "Uniform pulls (control)",
    "sar": "Successive accepts/rejects",
    "lucb": "LUCB",
    "magnitude": "Weight magnitude",
    "activation": "Mean activation",
    "random": "Random removal",
    "obs": "Greedy OBS",
    "tp_magnitude": "Torch-Pruning magnitude",
    "tp_taylor": "Torch-Pruning Taylor",
    SCRATCH: "Pruned size, trained from scratch",
    PAPER: "Paper's configuration (UCB1, zeroing)",
    "sk_linear": "scikit-learn linear model",
    "sk_knn": "scikit-learn k-nearest neighbours",
    "sk_tree": "scikit-learn decision tree",
    "sk_forest": "scikit-learn random forest",
    "sk_hgb": "scikit-learn gradient boosting",
    "sk_svm": "scikit-learn SVM (RBF)",
    "sk_mlp": "scikit-learn MLP",
}

#: How :func:`display_name` writes a method's compensation and pull scheme.
COMPENSATION_NAMES = {
    "none": "no compensation",
    "mean": "mean compensation",
    "lstsq": "least-squares refit",
}
PULL_NAMES = {
    "company": "company pulls",
    "single": "single pulls",
    "set": "set pulls",
}


def display_name(method, ratio=True):
    """The readable name of a benchmark method, for people.

    Parameters
    ----------
    method : str
        A method name of the grammar above (``"ucb1@0.5:lstsq/ft0+set"``), a
        scikit-learn peer (``"sk_mlp"``) or a bare policy (``"obs"``); a
        name none of these spell is returned unchanged.
    ratio : bool, default=True
        Whether to write the prune ratio (``"UCB1, 50 % removed"``); tables
        with one column or section per ratio leave it out.

    Returns
    -------
    str

    Examples
    --------
    >>> display_name("ucb1@0.5:lstsq/ft0")
    'UCB1 + least-squares refit, 50 % removed, no fine-tuning'
    >>> display_name("tp_magnitude@0.75", ratio=False)
    'Torch-Pruning magnitude'
    >>> display_name("none/ft0"), display_name("sk_mlp")
    ('Unpruned network, no fine-tuning', 'scikit-learn MLP')
    >>> display_name("exp3@0.9:lstsq/ft0+single", ratio=False)
    'EXP3 + least-squares refit, single pulls, no fine-tuning'
    """
    if method in DISPLAY_NAMES:
        return DISPLAY_NAMES[method]
    parsed = parse_method_name(method)
    if parsed is None:
        return method
    text = DISPLAY_NAMES[parsed.policy]
    if parsed.compensate is not None:
        text += f" + {COMPENSATION_NAMES[parsed.compensate]}"
    parts = [text]
    if parsed.pull is not None:
        parts.append(PULL_NAMES[parsed.pull])
    if ratio and parsed.prune_ratio == AUTO:
        parts.append("size found on validation rows")
    elif ratio and parsed.prune_ratio is not None:
        parts.append(f"{parsed.prune_ratio:.0%} removed".replace("%", " %"))
    if parsed.fine_tune_epochs == 0:
        parts.append("no fine-tuning")
    elif parsed.fine_tune_epochs is not None:
        parts.append(f"{parsed.fine_tune_epochs} fine-tuning epochs")
    return ", ".join(parts)
