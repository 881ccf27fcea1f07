"""scikit-learn's own estimator checks, for both estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor

#: Integer sample weights equal repeated rows in expectation, not to the
#: checks' 1e-7: training runs in float32 and pruning scores on a weighted
#: resample of the rows (zero weights equal dropping rows exactly, see
#: tests/test_mlp_dropin.py).
_WEIGHTS_ARE_NOT_REPEATS = "sample weights are not bitwise repeated rows"


def _expected_failed_checks(estimator):
    return {
        "check_sample_weight_equivalence_on_dense_data": _WEIGHTS_ARE_NOT_REPEATS,
        "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS_ARE_NOT_REPEATS,
    }


@parametrize_with_checks(
    [
        BanditPrunedMLPClassifier(random_state=0),
        BanditPrunedMLPRegressor(random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
