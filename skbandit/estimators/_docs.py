"""The estimators' shared documentation: one Parameters text, two classes.

Both estimators document their parameters from :data:`_PARAMETERS_DOC`, with
the pruning defaults read from the option registry, so that neither the
docs of the two classes nor the docs and the code can drift apart.
"""

import dataclasses
import re

from .._options import DEFAULTS, ESTIMATOR_POLICY

__all__ = ["shared_parameters_doc"]


# The Parameters section both estimators share (numpydoc), with the defaults
# read from the one registry so that the docs cannot drift from the code.
_PARAMETERS_DOC = """Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Width of each hidden layer before pruning (each at least 1; the
        whole network at most 10**9 parameters). Pruning keeps at least one
        unit per layer, so a layer of one unit is never pruned (a
        ``UserWarning`` says so).
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Hidden activation.
    solver : {"adam", "sgd", "adamw", "lbfgs"}, default="adam"
        Optimizer: Adam (``beta_1``, ``beta_2``, ``epsilon``), SGD
        (``momentum``, ``nesterovs_momentum``, ``learning_rate``), AdamW
        (Adam with decoupled weight decay 0.01, torch's default, on top of
        ``alpha``) or L-BFGS, which scikit-learn recommends for small
        datasets: full-batch ``torch.optim.LBFGS`` (10 correction pairs,
        strong-Wolfe line search), one iteration per epoch, for at most
        ``max_iter`` iterations and ``max_fun`` loss evaluations. It stops
        as scipy's L-BFGS-B does for scikit-learn: when the largest
        absolute gradient is at most ``tol``, or the loss decreases by
        less than ``2.2e-9`` of its size. ``batch_size``, ``shuffle``,
        ``learning_rate``, ``learning_rate_init``, ``n_iter_no_change`` and
        ``early_stopping`` are ignored, as in scikit-learn; a sparse ``X``
        is densified whole at every evaluation (the batch is all of it), so
        keep L-BFGS for data that fits in memory dense. Fine-tuning
        (between rounds and after pruning) runs the same full-batch L-BFGS,
        from fresh curvature pairs, for ``fine_tune_epochs`` iterations (by
        default ``max_iter``; again at most ``max_fun`` evaluations).
    alpha : float, default=0.0001
        Strength of the L2 penalty, as in scikit-learn: every minibatch adds
        ``0.5 * alpha * ||W||² / s`` to its loss, ``||W||²`` the sum of the
        squared weights of every layer (not the biases), ``s`` the batch's
        sum of sample weights (its size when unweighted). The regressor's
        loss is the mean squared error of standardised targets, where
        scikit-learn's is half the squared error of raw targets, so the same
        ``alpha`` regularises it differently.
    batch_size : int or "auto", default="auto"
        Training minibatch size; ``"auto"`` is ``min(200, n_samples)``. A
        larger value is clipped to ``n_samples``.
    learning_rate : {"constant", "invscaling", "adaptive", "cosine"}, \
default="constant"
        Learning-rate schedule. ``"invscaling"`` (after each epoch
        ``learning_rate_init / (t + 1) ** power_t``, ``t`` the samples seen)
        and ``"adaptive"`` (divide by 5 instead of stopping when ``tol`` is
        not met, stop below 1e-6) are scikit-learn's and only used when
        ``solver="sgd"``; ``"cosine"`` anneals to 0 over ``max_iter``
        epochs with every solver.
    learning_rate_init : float, default=0.001
        Initial learning rate.
    power_t : float, default=0.5
        Exponent of ``learning_rate="invscaling"``.
    max_iter : int, default=200
        Most training epochs of the unpruned network (with
        ``solver="lbfgs"``: L-BFGS iterations).
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    tol : float, default=1e-4
        Training stops when the training loss (or with ``early_stopping``
        the validation score) has not improved by at least ``tol`` for more
        than ``n_iter_no_change`` consecutive epochs. With
        ``solver="lbfgs"`` it bounds the gradient instead (see ``solver``).
    momentum : float in [0, 1], default=0.9
        SGD momentum (``solver="sgd"``).
    nesterovs_momentum : bool, default=True
        Nesterov momentum (``solver="sgd"`` and ``momentum > 0``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified
        for single-label classification), stop when its score (accuracy or
        R²) has not improved by ``tol`` for more than ``n_iter_no_change``
        epochs, and restore the weights of the best score.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out with ``early_stopping``.
    beta_1 : float in [0, 1), default=0.9
        Adam's decay rate of the first moment estimates.
    beta_2 : float in [0, 1), default=0.999
        Adam's decay rate of the second moment estimates.
    epsilon : float, default=1e-8
        Adam's numerical stability term.
    n_iter_no_change : int or np.inf, default=10
        Epochs without ``tol`` improvement that stop training; ``np.inf``
        never stops early.
    max_fun : int, default=15000
        Only used with ``solver="lbfgs"``: most loss evaluations of each
        training phase (training, each fine-tuning). Every iteration
        evaluates the loss once where it starts and at least once in its
        line search, so ``max_fun`` allows at most ``max_fun // 2``
        iterations; training stops before an iteration that could exceed
        it.
    warm_start : bool, default=False
        Continue training the previous fit's unpruned network (kept as
        ``unpruned_module_``) instead of new weights, then prune it anew.
        The data must have the same features and outputs (for the
        classifier the same classes), and ``hidden_layer_sizes`` and
        ``activation`` those of that network: any change raises a
        ``ValueError`` (set ``warm_start=False`` to train a new network).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes (classifier), multiplying ``sample_weight``;
        ``"balanced"`` is ``n_samples / (n_classes * np.bincount(y))``. Not
        for multilabel targets. Weights must be finite and non-negative. As
        in scikit-learn a class may weigh 0: its samples are left out of
        training, but it stays in ``classes_`` (and has its output and
        ``predict_proba`` column), so it is hardly ever predicted.
    loss : {"squared_error", "poisson"}, default="squared_error"
        The regressor's loss. ``"poisson"``, as scikit-learn's: half the
        Poisson deviance, an ``exp`` output (the network predicts ``log y``,
        ``out_activation_ == "exp"``), non-negative targets, not
        standardised; pruning scores with the same loss.
    policy : str or policy object, default=%(estimator_policy)s
        How the neurons to remove are chosen. A bandit policy:
        ``"epsilon_greedy"``, ``"softmax"``, ``"ucb1"``, ``"thompson"``,
        ``"gaussian_thompson"``, ``"hedge"``, ``"exp3"``, the pure-exploration
        ``"uniform"`` (round robin), ``"sar"``, ``"lucb"``, or an object
        following :class:`skbandit.policies.BasePolicy`; a baseline:
        ``"magnitude"`` (smallest incoming-weight norm), ``"activation"``
        (least varying activation), ``"random"``, ``"obs"`` (greedy optimal
        brain surgeon on the next layer's least-squares refit); or ``"none"``
        (no pruning, trained for as many epochs as a pruned network). One
        ``GridSearchCV`` grid can therefore compare every method. The
        default is ``"obs"``: on the held-out checks no bandit removed
        better at a cost within twice OBS's (see :ref:`which method when
        <which-method>`); the bandit settings below apply when ``policy`` is
        a bandit.
    prune_ratio : float in [0, 1) or "auto", default=%(prune_ratio)s
        Fraction of hidden neurons removed (per layer or overall, see
        ``scope``); a layer always keeps at least one neuron. ``"auto"``
        finds the size: the trained network is pruned in nested steps of
        ``path_step`` down to one neuron per layer (each step prunes the
        previous one with the same ``policy``, ``budget``, ``compensate``,
        ...), every step is scored (``score``: accuracy or R²) on
        validation rows, and the smallest network whose score is at most
        ``max_score_drop`` below the best on the path (the unpruned
        network's, unless removal raised it) is kept and
        fine-tuned. The validation rows are ``validation_data`` passed to
        ``fit`` or a ``validation_fraction`` of the data (stratified for a
        classifier; the rows ``early_stopping`` holds out, if on), which
        then neither trains without ``early_stopping`` nor prunes nor
        fine-tunes. ``target_params`` and ``target_latency`` become hard
        limits: the path's first step prunes to them and the chosen network
        is never larger. See ``path_`` and :ref:`choosing-size`. Needs a
        pruning ``policy`` (not ``"none"``) and ``n_rounds=1``.
    max_score_drop : float >= 0, default=0.01
        With ``prune_ratio="auto"``: the largest drop of the validation
        score (accuracy, or R²) below the best score on the path (the
        unpruned network's, unless removal raised it) that the kept network
        may have, before the final fine-tuning.
    path_step : float in (0, 1), default=0.2
        With ``prune_ratio="auto"``: the fraction of the remaining neurons
        of each layer (``scope="layer"``) or of all of them
        (``scope="global"``) that every step removes, rounded down but at
        least one neuron of the widest layer (or overall).
    budget : float in [1, 1000] or "auto", default=%(budget)s
        Average bandit pulls per neuron, or ``"auto"``: each bandit stops as
        soon as the neurons it would remove and those it would keep are
        separated by confidence bounds (at most ``max_budget`` per neuron).
        At least one pull per neuron (fewer leaves neurons unmeasured), at
        most :data:`skbandit.pruning.MAX_BUDGET` (1000).
    max_budget : float in [1, 1000], default=%(max_budget)s
        Cap of pulls per neuron when ``budget="auto"``.
    pull : {"company", "single", "set"}, default=%(pull)s
        What a pull removes: one neuron on top of the rest of the bandit's
        current removal plan (its marginal cost in the company it will be
        removed with), one neuron alone (the paper's), or the whole planned
        set (combinatorial feedback, every neuron of the set shares its
        reward).
    n_rounds : int, default=%(n_rounds)s
        Iterative pruning: reach the target in ``n_rounds`` geometric steps,
        re-scoring the survivors each time (bandits warm-started) and
        fine-tuning ``fine_tune_epochs`` after every round. At most the
        number of hidden neurons.
    target_params : int or float, default=%(target_params)s
        Prune to a parameter count (or a fraction of it, if < 1) instead of
        ``prune_ratio``; neurons of all layers are removed in one score
        order, so per-layer ratios follow from the scores.
    target_latency : float in (0, 1), default=%(target_latency)s
        Prune to this fraction of the unpruned inference latency with the
        fewest neurons removed, instead of ``prune_ratio``. Latency is
        estimated by the multiply-accumulates per sample, which are
        deterministic, so a fixed ``random_state`` keeps the same neurons on
        every fit; the measured ratio is reported in
        ``pruning_.latency_ratio``.
    reward : {"fidelity", "loss", "accuracy"} or reward object, \
default=%(reward)s
        Safe-removal reward: how little the outputs move from the unpruned
        network's (:class:`skbandit.pruning.FidelityReward`; for regression
        the mean squared change of the standardised predictions), the loss
        change (:class:`skbandit.pruning.LossReward`, the paper's) or the
        accuracy change (:class:`skbandit.pruning.AccuracyReward`,
        classification only).
    scope : {"layer", "global"}, default=%(scope)s
        One bandit and one ratio per layer, or one over the whole network.
    compensate : {"lstsq", "mean", "none"}, default=%(compensate)s
        What replaces the removed neurons' contribution to the next layer,
        see :func:`skbandit.pruning.remove_units`: a least-squares refit of
        the next layer, the mean activation folded into its bias, or nothing
        (``"none"``, the zeroing of the original method). The pulls remove a
        neuron the same way. ``**PAPER_SETTINGS``
        (:data:`skbandit.pruning.PAPER_SETTINGS`) gives the paper's
        configuration.
    pull_batch_size : int, default=%(pull_batch_size)s
        Minibatch size of a pull.
    arms_per_round : int, default=%(arms_per_round)s
        Neurons a bandit pulls per minibatch; ``None`` is an eighth of them.
    fine_tune_epochs : int or "auto", default="auto"
        Epochs of training after pruning (0 for none), with the optimisation
        settings above. ``"auto"`` is %(fine_tune_epochs)s epochs with
        ``"adam"``, ``"adamw"`` and ``"sgd"`` (passes over the data), and
        ``max_iter`` iterations with ``"lbfgs"``, whose epochs are single
        full-batch iterations: its fine-tuning then runs to convergence (the
        same stopping rule as its training), as few L-BFGS iterations barely
        move the weights.
    memory : str, path-like, joblib.Memory or None, default=None
        Cache of the trained, unpruned network (like ``Pipeline(memory=...)``),
        keyed on the data, the sample weights, every training hyperparameter,
        the seed and the versions of skbandit and torch. Fits that differ only
        in pruning settings (``policy``, ``prune_ratio``, ``budget``, ...)
        then train once, also across processes: a ``GridSearchCV`` over
        pruning settings costs about one training per fold (``fit_times_``
        and ``train_cache_hit_`` show it). ``None`` caches nothing; a path is
        a cache directory (created if missing; an existing file is an error);
        of a ``joblib.Memory`` only its ``location`` is used. Only effective
        with an int ``random_state`` (otherwise every fit draws new weights),
        and not used when ``warm_start`` continues a previous fit. Entries are
        state dicts and JSON read with ``torch.load(weights_only=True)``, so a
        crafted file in the folder cannot run code; an entry that cannot be
        read, answers another call or fails its digest is retrained with a
        ``RuntimeWarning`` and replaced.
    device : str or torch.device, default="cpu"
        Where the network trains and is pruned (``"cuda"`` needs a CUDA
        build of torch). A fitted estimator pickles its networks on the
        CPU, so it also loads, and predicts on the CPU, where that device
        is missing.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order, the validation split and
        the bandit; an int gives identical predictions on every fit on the
        same device, torch build and thread count.
    verbose : int, default=0
        1 prints one plain line per phase (training, pruning, fine-tuning),
        2 adds one line per epoch."""


def shared_parameters_doc(cls):
    """Class decorator: fill ``%(parameters)s`` in ``cls``'s docstring with
    the entries of the shared text that are parameters of ``cls``."""
    if cls.__doc__:  # None under python -OO
        defaults = {
            name: f'"{value}"' if isinstance(value, str) else value
            for name, value in dataclasses.asdict(DEFAULTS).items()
        }
        defaults["estimator_policy"] = f'"{ESTIMATOR_POLICY}"'
        parameters = _own_entries(_PARAMETERS_DOC % defaults, cls._get_param_names())
        cls.__doc__ = cls.__doc__.replace("%(parameters)s", parameters)
    return cls


def _own_entries(section, names):
    """``section`` (a numpydoc Parameters text) without the entries of
    parameters other than ``names``."""
    entries = re.split(r"\n(?=    \w[\w, ]* : )", section)
    kept = [
        entry
        for entry in entries[1:]
        if set(entry.split(" : ")[0].strip().split(", ")) <= set(names)
    ]
    return "\n".join([entries[0], *kept])
