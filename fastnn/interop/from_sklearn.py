"""scikit-learn to fastnn: `from_sklearn` for fitted MLPClassifier and MLPRegressor."""
import numpy as np

from fastnn.interop._chain import build, require

__all__ = ["from_sklearn", "ACTIVATIONS"]

ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "softmax": "softmax"}
"""scikit-learn's activation names -> fastnn's."""


def from_sklearn(estimator):
    """A built `fastnn.Sequential` computing a fitted scikit-learn MLP.

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor, fitted

    Returns
    -------
    Sequential
        In the dtype of ``coefs_``. For a classifier ``model.predict`` returns what
        ``predict_proba`` does (for two classes, the probability of the second, as one
        sigmoid unit) and ``model.classes`` holds ``classes_``. A multilabel classifier
        keeps its sigmoid outputs, without classes.
    """
    nn = require("sklearn.neural_network", "scikit-learn")
    if not isinstance(estimator, (nn.MLPClassifier, nn.MLPRegressor)):
        raise TypeError(f"from_sklearn takes a fitted MLPClassifier or MLPRegressor, got "
                        f"{type(estimator).__name__}")
    if not hasattr(estimator, "coefs_"):
        raise ValueError(f"this {type(estimator).__name__} is not fitted yet")
    hidden = ACTIVATIONS.get(estimator.activation)
    out = ACTIVATIONS.get(estimator.out_activation_)
    if hidden is None or out is None:
        raise ValueError(f"activation {estimator.activation!r} / {estimator.out_activation_!r}"
                         f" is not supported; supported: {', '.join(sorted(ACTIVATIONS))}")
    steps = []
    last = len(estimator.coefs_) - 1
    for k, (W, b) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
        steps.append(("dense", W, b))
        steps.append(("activation", out if k == last else hidden, None))
    dtype = np.float64 if estimator.coefs_[0].dtype == np.float64 else np.float32
    model = build(steps, estimator.coefs_[0].shape[0], dtype, name="from_sklearn")
    multilabel = isinstance(estimator, nn.MLPClassifier) and estimator._label_binarizer.y_type_ \
        == "multilabel-indicator"
    if isinstance(estimator, nn.MLPClassifier) and not multilabel:
        model.classes = list(estimator.classes_.tolist())
    return model
