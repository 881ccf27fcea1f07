"""scikit-learn's own estimator checks, for both estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor


@parametrize_with_checks(
    [
        BanditPrunedMLPClassifier(random_state=0),
        BanditPrunedMLPRegressor(random_state=0),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
