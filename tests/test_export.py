"""Export and reload of the compact network (skbandit.export).

Every route (state dict + spec, TorchScript trace and script, ONNX) must
reproduce the network's float32 output and the estimator's predictions to
1e-5. The estimators run ``module_`` in float64 on a copy, so the exported
float32 outputs are compared with ``module_(X)`` in float32 and, through the
softmax / the target scaling, with ``predict_proba`` / ``predict``.
"""

import io
import json

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from torch import nn

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
    clf, X = clf_data
    path = export_onnx(clf, tmp_path / "clf.onnx", dynamo=True)
    _check_classifier(_run_onnx(path, X), clf, X)
