"""Export and reload of the compact network (skbandit.export).

Every route (state dict + spec, TorchScript trace and script, ONNX) must
reproduce the network's float32 output and the estimator's predictions to
1e-5. The estimators run ``module_`` in float64 on a copy, so the exported
float32 outputs are compared with ``module_(X)`` in float32 and, through the
softmax / the target scaling, with ``predict_proba`` / ``predict``.
"""

import functools
import inspect
import io
import json
import re

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
from skbandit.export import (
    build_module,
    export_onnx,
    load_checkpoint,
    load_module,
    module_spec,
    save_module,
    to_torchscript,
)
from skbandit.pruning import find_unit_groups, remove_units

pytestmark = pytest.mark.filterwarnings(
    # TorchScript is deprecated upstream (torch >= 2.10) but still asked for.
    "ignore:.*is deprecated.*:DeprecationWarning",
    "ignore:.*legacy TorchScript-based ONNX export.*:DeprecationWarning",
    "ignore:The feature will be removed:DeprecationWarning",
)

TOL = dict(rtol=1e-5, atol=1e-5)
FAST = dict(
    max_iter=8, learning_rate_init=0.02, fine_tune_epochs=1, budget=2, random_state=0
)


@pytest.fixture(scope="module")
def clf_data():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = BanditPrunedMLPClassifier((12, 8), prune_ratio=0.5, **FAST).fit(X, y)
    return clf, X


@pytest.fixture(scope="module")
def reg_data():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X[:120])
    reg = BanditPrunedMLPRegressor((10,), activation="tanh", **FAST).fit(X, y[:120])
    return reg, X


def _logits(module, X):
    with torch.no_grad():
        return module(torch.as_tensor(X, dtype=torch.float32)).numpy()


def _check_classifier(outputs, clf, X):
    np.testing.assert_allclose(outputs, _logits(clf.module_, X), **TOL)
    proba = softmax(outputs.astype(np.float64), axis=1)
    np.testing.assert_allclose(proba, clf.predict_proba(X), **TOL)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))


# -- state dict + spec -----------------------------------------------------------


def test_save_load_classifier(clf_data, tmp_path):
    clf, X = clf_data
    path = tmp_path / "clf.pt"
    save_module(clf, path)
    # Plain values and tensors only: loadable without unpickling any class.
    raw = torch.load(path, weights_only=True)
    json.dumps(raw["spec"])
    json.dumps(raw["meta"])
    assert raw["meta"]["classes"] == [0, 1, 2]
    assert raw["meta"]["n_features_in"] == 4
    sizes = [l["out_features"] for l in raw["spec"]["layers"] if l["type"] == "Linear"]
    assert sizes == [6, 4, 3]  # the pruned, physically smaller network
    module = load_module(path)
    assert isinstance(module, nn.Sequential) and not module.training
    np.testing.assert_array_equal(_logits(module, X), _logits(clf.module_, X))
    _check_classifier(_logits(module, X), clf, X)


def test_save_load_regressor(reg_data, tmp_path):
    reg, X = reg_data
    path = tmp_path / "reg.pt"
    save_module(reg, path)
    loaded = load_checkpoint(path)
    outputs = _logits(loaded["module"], X)
    np.testing.assert_allclose(outputs, _logits(reg.module_, X), **TOL)
    meta = loaded["meta"]
    assert meta["estimator"] == "BanditPrunedMLPRegressor"
    pred = outputs.astype(np.float64) * meta["y_scale"] + meta["y_mean"]
    # Targets are in the hundreds: 1e-5 relative to their scale.
    np.testing.assert_allclose(pred.ravel(), reg.predict(X), rtol=1e-5, atol=1e-3)


def _predict_from_checkpoint(path, X):
    """Predictions by the module text's recipe for ``meta["output"]``."""
    loaded = load_checkpoint(path)
    out, meta = _logits(loaded["module"], X).astype(np.float64), loaded["meta"]
    if meta["output"] == "softmax":
        return softmax(out, axis=1)
    if meta["output"] == "sigmoid":
        return 1 / (1 + np.exp(-out))
    if meta["output"] == "exp":
        return np.exp(out).ravel()
    return (out * meta["y_scale"] + meta["y_mean"]).ravel()


def test_meta_names_the_output_transform(clf_data, tmp_path):
    # Multilabel and Poisson outputs are not softmax / standardised ones: a
    # deployed export read by the old recipe predicted silently wrong.
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(80, 5, n_classes=3, random_state=0)
    counts = np.random.default_rng(0).poisson(2.0, size=80).astype(float)
    fitted = [
        (clf_data[0], clf_data[1], "softmax", "predict_proba"),
        (BanditPrunedMLPClassifier((8,), max_iter=20, random_state=0).fit(X, Y),
         X, "sigmoid", "predict_proba"),
        (BanditPrunedMLPRegressor((8,), loss="poisson", max_iter=20,
                                  random_state=0).fit(X, counts),
         X, "exp", "predict"),
    ]  # fmt: skip
    for estimator, data, output, method in fitted:
        path = tmp_path / f"{output}.pt"
        save_module(estimator, path)
        assert load_checkpoint(path)["meta"]["output"] == output
        np.testing.assert_allclose(
            _predict_from_checkpoint(path, data),
            getattr(estimator, method)(data),
            rtol=1e-5,
            atol=1e-6,
        )


def test_spec_round_trips_other_layers_and_dtypes(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 9),
        nn.BatchNorm1d(9),
        nn.LeakyReLU(0.1),
        nn.Dropout(0.2),
        nn.Sequential(nn.Linear(9, 7, bias=False), nn.GELU(approximate="tanh")),
        nn.Linear(7, 2),
    )
    net.train()
    net(torch.randn(32, 5))  # non-trivial running statistics
    net.eval()
    X = torch.randn(11, 5)
    # A pruned copy whose bias-free consumer gained a bias (mean folding).
    groups = find_unit_groups(net)
    pruned = remove_units(net, groups, [[0, 3], [1]], "mean", X)
    for model in (net, pruned, pruned.double()):
        path = tmp_path / "m.pt"
        save_module(model, path)
        again = load_module(path)
        x = X.to(next(model.parameters()).dtype)
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
        assert module_spec(again) == module_spec(model)
    spec = module_spec(pruned)
    assert build_module(json.loads(json.dumps(spec)))[4][0].bias is not None


def test_export_rejects_what_it_cannot_describe(clf_data, tmp_path):
    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="cannot describe layer '1' of type Custom"):
        module_spec(nn.Sequential(nn.Linear(2, 2), Custom()))
    with pytest.raises(TypeError, match="describes nn.Sequential"):
        save_module(nn.Linear(2, 2), tmp_path / "x.pt")
    with pytest.raises(NotFittedError):
        save_module(BanditPrunedMLPClassifier(), tmp_path / "x.pt")
    with pytest.raises(TypeError, match="fitted skbandit estimator or a torch.nn"):
        save_module("model", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable module checkpoint"):
        load_module(bad)
    torch.save({"format": "other"}, bad)
    with pytest.raises(ValueError, match="not a skbandit module checkpoint"):
        load_module(bad)
    # A class pickled into the file is refused, not executed.
    torch.save({"format": "skbandit.module", "module": nn.Linear(2, 2)}, bad)
    with pytest.raises(ValueError, match="not a readable module checkpoint"):
        load_module(bad)
    with pytest.raises(ValueError, match="unknown layer type 'Conv9d'"):
        build_module(
            {"type": "Sequential", "layers": [{"name": "0", "type": "Conv9d"}]}
        )


# -- TorchScript -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["trace", "script"])
def test_torchscript(clf_data, method):
    clf, X = clf_data
    scripted = to_torchscript(clf, method=method)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    # Traced on a 2-row example, run on all 150 rows.
    _check_classifier(_logits(loaded, X), clf, X)
    assert clf.module_[0].weight.dtype == torch.float32  # the original untouched


def test_torchscript_regressor_and_bad_method(reg_data):
    reg, X = reg_data
    traced = to_torchscript(reg)
    np.testing.assert_allclose(_logits(traced, X), _logits(reg.module_, X), **TOL)
    with pytest.raises(ValueError, match="method must be 'trace' or 'script'"):
        to_torchscript(reg, method="compile")


# -- ONNX -----------------------------------------------------------------------------


def _run_onnx(path, X):
    """Outputs of an ONNX file: onnxruntime if installed, else onnx's reference."""
    X = np.asarray(X, dtype=np.float32)
    try:
        import onnxruntime
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(str(path)).run(None, {"X": X})[0]
    session = onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"X": X})[0]


def test_onnx_classifier_and_regressor(clf_data, reg_data, tmp_path):
    onnx = pytest.importorskip("onnx")
    clf, X = clf_data
    path = export_onnx(clf, tmp_path / "clf.onnx")
    onnx.checker.check_model(onnx.load(path))
    _check_classifier(_run_onnx(path, X), clf, X)
    # onnx's own reference evaluator agrees too
    from onnx.reference import ReferenceEvaluator

    reference = ReferenceEvaluator(path).run(None, {"X": X.astype(np.float32)})[0]
    _check_classifier(reference, clf, X)

    reg, Xr = reg_data
    path = export_onnx(reg, tmp_path / "reg.onnx")
    np.testing.assert_allclose(_run_onnx(path, Xr), _logits(reg.module_, Xr), **TOL)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.export internals
def test_onnx_dynamo_exporter(clf_data, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    if "dynamo" not in inspect.signature(torch.onnx.export).parameters:
        pytest.skip("torch < 2.5 has no dynamo ONNX exporter")
    clf, X = clf_data
    path = export_onnx(clf, tmp_path / "clf.onnx", dynamo=True)
    _check_classifier(_run_onnx(path, X), clf, X)


# -- untrusted files -----------------------------------------------------------------


class _LargestAllocation(TorchDispatchMode):
    """Records the largest tensor any torch operation returns off the meta
    device (every allocation by a layer constructor goes through one)."""

    largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in torch.utils._pytree.tree_leaves(out):
            if torch.is_tensor(value) and not value.is_meta:
                self.largest = max(self.largest, value.numel())
        return out


def _checkpoint(spec=None, state=None, **entries):
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    checkpoint = {
        "format": "skbandit.module",
        "version": 1,
        "spec": module_spec(net) if spec is None else spec,
        "state_dict": net.state_dict() if state is None else state,
        "meta": {},
    }
    return {**checkpoint, **entries}


def test_load_rejects_a_huge_declared_layer_without_allocating_it(tmp_path):
    spec = {
        "type": "Sequential",
        "dtype": "float32",
        "layers": [
            {
                "name": "0",
                "type": "Linear",
                "in_features": 20000,
                "out_features": 20000,
                "bias": True,
            },
        ],
    }
    state = {"0.weight": torch.zeros(2, 2), "0.bias": torch.zeros(2)}
    path = tmp_path / "evil.pt"
    torch.save(_checkpoint(spec, state), path)
    assert path.stat().st_size < 4096
    with _LargestAllocation() as mode:
        with pytest.raises(ValueError, match="weights do not fit the spec"):
            load_module(path)
    assert mode.largest < 1000  # the file's own tiny tensors at most


def _spec_with(layer):
    return {"type": "Sequential", "dtype": "float32", "layers": [layer]}


LINEAR = {"name": "0", "type": "Linear", "in_features": 3, "out_features": 4}
MALFORMED = {
    "spec not a dict": dict(spec=["Sequential"]),
    "spec of another type": dict(spec={"type": "Module", "layers": []}),
    "unknown dtype": dict(spec={"type": "Sequential", "dtype": "int8", "layers": []}),
    "dtype not a string": dict(spec={"type": "Sequential", "dtype": 3, "layers": []}),
    "layers not a list": dict(spec={"type": "Sequential", "layers": "0"}),
    "layers missing": dict(spec={"type": "Sequential"}),
    "layer not a dict": dict(spec=_spec_with("Linear")),
    "layer without name": dict(spec=_spec_with({"type": "ReLU"})),
    "layer name not a string": dict(spec=_spec_with({"name": 0, "type": "ReLU"})),
    "layer name with a dot": dict(spec=_spec_with({"name": "a.b", "type": "ReLU"})),
    "duplicate layer names": dict(
        spec={
            "type": "Sequential",
            "layers": [{"name": "0", "type": "ReLU"}, {"name": "0", "type": "Tanh"}],
        }
    ),
    "layer without type": dict(spec=_spec_with({"name": "0"})),
    "layer type not a string": dict(spec=_spec_with({"name": "0", "type": ["x"]})),
    "unknown layer type": dict(spec=_spec_with({"name": "0", "type": "Conv9d"})),
    "unknown argument": dict(spec=_spec_with({**LINEAR, "device": "cuda"})),
    "missing argument": dict(spec=_spec_with({"name": "0", "type": "Linear"})),
    "string size": dict(spec=_spec_with({**LINEAR, "in_features": "3"})),
    "float size": dict(spec=_spec_with({**LINEAR, "in_features": 2.5})),
    "negative size": dict(spec=_spec_with({**LINEAR, "in_features": -3})),
    "size beyond any memory": dict(
        spec=_spec_with({**LINEAR, "in_features": 2**62, "out_features": 2**62})
    ),
    "dict argument": dict(spec=_spec_with({**LINEAR, "in_features": {"n": 3}})),
    "bad padding mode": dict(
        spec=_spec_with(
            {
                "name": "0",
                "type": "Conv1d",
                "in_channels": 1,
                "out_channels": 1,
                "kernel_size": 3,
                "padding_mode": "mirror",
            }
        )
    ),
    "Sequential without layers": dict(
        spec=_spec_with({"name": "0", "type": "Sequential"})
    ),
    "nested too deep": dict(
        spec=functools.reduce(
            lambda inner, _: _spec_with(
                {"name": "0", "type": "Sequential", "layers": inner["layers"]}
            ),
            range(100),
            _spec_with({"name": "0", "type": "ReLU"}),
        )
    ),
    "state not a dict": dict(state=[torch.zeros(4, 3)]),
    "state entry not a tensor": dict(
        state={**_checkpoint()["state_dict"], "0.weight": [[0.0] * 3] * 4}
    ),
    "state entry missing": dict(state={"0.weight": torch.zeros(4, 3)}),
    "state entry unexpected": dict(
        state={**_checkpoint()["state_dict"], "3.weight": torch.zeros(1)}
    ),
    "state entry of the wrong shape": dict(
        state={**_checkpoint()["state_dict"], "0.weight": torch.zeros(3, 4)}
    ),
    "state entry of the wrong dtype": dict(
        state={**_checkpoint()["state_dict"], "0.bias": torch.zeros(4).double()}
    ),
    "sparse state entry": dict(
        state={**_checkpoint()["state_dict"], "2.bias": torch.zeros(2).to_sparse()}
    ),
    "version not an integer": dict(version="1"),
    "newer version": dict(version=99),
    "meta not a dict": dict(meta=["classes"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_load_rejects_malformed_files_with_value_error(case, tmp_path):
    entries = dict(MALFORMED[case])
    path = tmp_path / "bad.pt"
    spec, state = entries.pop("spec", None), entries.pop("state", None)
    torch.save(_checkpoint(spec, state, **entries), path)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_module(path)


def _state_with(key, index, value):
    state = {k: v.clone() for k, v in _checkpoint()["state_dict"].items()}
    state[key][index] = value
    return state


# The checkpoint's network (see _checkpoint) reads 3 features, outputs 2.
WRONG_VALUES = {
    "NaN weight": (
        dict(state=_state_with("0.weight", (1, 2), float("nan"))),
        "state_dict entry '0.weight' holds NaN or infinite values",
    ),
    "infinite bias": (
        dict(state=_state_with("2.bias", 1, float("-inf"))),
        "state_dict entry '2.bias' holds NaN or infinite values",
    ),
    "too many classes": (
        dict(meta={"classes": [0, 1, 2]}),
        r"meta\['classes'\] has 3 classes, but the network has 2 outputs",
    ),
    "too few classes": (
        dict(meta={"classes": ["a"]}),
        r"meta\['classes'\] has 1 classes, but the network has 2 outputs",
    ),
    "classes not a list": (
        dict(meta={"classes": "ab"}),
        r"meta\['classes'\] must be a list of numbers or strings, got str",
    ),
    "duplicate classes": (
        dict(meta={"classes": ["a", "a"]}),
        r"meta\['classes'\] has duplicates",
    ),
    "y_mean too long": (
        dict(meta={"y_mean": [0.0, 1.0, 2.0], "y_scale": [1.0, 1.0]}),
        r"meta\['y_mean'\] has 3 values, but the network has 2 outputs",
    ),
    "y_scale too short": (
        dict(meta={"y_mean": [0.0, 1.0], "y_scale": [1.0]}),
        r"meta\['y_scale'\] has 1 values, but the network has 2 outputs",
    ),
    "y_mean not finite": (
        dict(meta={"y_mean": [0.0, float("nan")], "y_scale": [1.0, 1.0]}),
        r"meta\['y_mean'\] must hold finite numbers",
    ),
    "y_scale not numbers": (
        dict(meta={"y_mean": [0.0, 1.0], "y_scale": ["1", 1.0]}),
        r"meta\['y_scale'\] must hold finite numbers",
    ),
    "y_scale zero": (
        dict(meta={"y_mean": [0.0, 1.0], "y_scale": [1.0, 0.0]}),
        r"meta\['y_scale'\] must hold finite numbers > 0",
    ),
    "n_features_in not the first layer's": (
        dict(meta={"n_features_in": 5}),
        r"meta\['n_features_in'\] is 5, but the network's first layer reads 3",
    ),
    "feature names of another length": (
        dict(meta={"n_features_in": 3, "feature_names_in": ["a", "b"]}),
        r"meta\['feature_names_in'\] has 2 names, but n_features_in is 3",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_VALUES))
def test_load_rejects_values_that_would_predict_wrongly(case, tmp_path):
    """Weights and meta that fit the spec's shapes but could only give wrong
    (or NaN) predictions: the message names the entry."""
    entries, match = WRONG_VALUES[case]
    entries = dict(entries)
    path = tmp_path / "bad.pt"
    state = entries.pop("state", None)
    torch.save(_checkpoint(None, state, **entries), path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + match):
        load_checkpoint(path)


def test_load_accepts_meta_that_fits(clf_data, reg_data, tmp_path):
    for estimator, _ in (clf_data, reg_data):
        save_module(estimator, tmp_path / "m.pt")
        assert load_checkpoint(tmp_path / "m.pt")["meta"]
    multilabel = BanditPrunedMLPClassifier((6,), **FAST).fit(
        clf_data[1], np.eye(3, dtype=int)[clf_data[0].predict(clf_data[1])]
    )
    save_module(multilabel, tmp_path / "m.pt")
    assert load_checkpoint(tmp_path / "m.pt")["meta"]["classes"] == [0, 1, 2]


def test_load_assigns_the_files_tensors(tmp_path):
    net = nn.Sequential(
        nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.Flatten(), nn.Linear(12, 2)
    ).eval()
    path = tmp_path / "m.pt"
    save_module(net, path)
    again = load_module(path)
    assert not any(t.is_meta for t in again.state_dict().values())
    x = torch.randn(5, 2, 6)
    torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)
    assert all(p.requires_grad for p in again.parameters())
