"""scikit-learn estimators: `MLPClassifier` and `MLPRegressor` over a fastnn `Sequential`.

They take scikit-learn's `sklearn.neural_network` parameters with the same names,
meanings and defaults, so that changing the import is enough::

    from fastnn.sklearn import MLPClassifier   # was: from sklearn.neural_network import ...

Training is `Sequential.fit`; the estimator only translates: it validates the input
once with scikit-learn's own checks, encodes the labels, builds and compiles the model,
and follows scikit-learn's stopping rules from a callback. Predictions run on the
deployed `InferenceEngine`.

How scikit-learn's objective maps onto fastnn's losses: scikit-learn minimises, per
batch of ``n`` samples, ``data_loss + 0.5 * alpha * sum(||W||^2) / n`` with the half
squared error for regression, the log-loss summed over outputs for multi-label
problems and the cross-entropy otherwise. fastnn's losses are ``c`` times those
(``c = 2`` for regression, ``1 / n_outputs`` for multi-label, else 1), so the L2
penalty on the kernels is ``0.5 * c * alpha / batch_size * sum(W**2)``, the reported
``loss_`` is fastnn's loss divided by ``c`` and the SGD step is divided by ``c``; Adam is
unaffected by the scale. As in scikit-learn, ``n`` is the size of each batch, the
shorter last one included.
"""
import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import (_check_partial_fit_first_call, type_of_target,
                                          unique_labels)
    from sklearn.utils.validation import (_check_sample_weight, check_is_fitted, column_or_1d,
                                          validate_data)
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("fastnn.sklearn needs scikit-learn: pip install 'fastnn[sklearn]'") from exc

from fastnn import activations, callbacks, initializers, layers as L, optimizers, pruning
from fastnn import regularizers
from fastnn._validation import check_choice, check_int, check_real
from fastnn.deployment import deploy
from fastnn.engine import MAX_BATCH
from fastnn.model import Sequential

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names, as fastnn's; every fastnn name is accepted too.
_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid"}
_SOLVERS = ("adam", "sgd")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
# The SGD learning rate at which "adaptive" gives up, as scikit-learn.
_MIN_ADAPTIVE_LR = 1e-6


class _Progress(callbacks.Callback):
    """scikit-learn's bookkeeping and stopping rules, run at the end of every epoch."""

    def __init__(self, estimator, n_samples, validation):
        self.estimator = estimator
        self.n_samples = n_samples
        self.validation = validation  # (X_val, y_val, weights) or None
        self.best_weights = None
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        est, opt = self.estimator, self.model.optimizer
        est.n_iter_ += 1
        est.t_ += self.n_samples
        est.loss_ = logs["loss"] / est._loss_scale
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        if self.validation is not None:
            score = est._score_checked(*self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_weights = self.model.get_weights()
        else:
            if est.loss_ > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            est.best_loss_ = min(est.best_loss_, est.loss_)
        sgd = est.solver == "sgd"
        if sgd and est.learning_rate == "invscaling":
            opt.learning_rate = est.learning_rate_init / est._loss_scale \
                / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            if sgd and est.learning_rate == "adaptive" \
                    and opt.learning_rate * est._loss_scale > _MIN_ADAPTIVE_LR:
                opt.learning_rate = opt.learning_rate / 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"Setting learning rate to {opt.learning_rate * est._loss_scale:f}")
            else:
                if est.verbose:
                    print("No improvement in the last epochs. Stopping.")
                self.model.stop_training = True
                self.stopped = True


class _BatchL2(callbacks.Callback):
    """scikit-learn's L2 penalty, ``0.5 * c * alpha / n * sum(W**2)`` for a batch of n
    samples: the kernels' regularizers for the nominal batch size, swapped for the
    shorter last batch of each epoch (the model has no hook before a batch, so the
    swap follows the batch before it)."""

    def __init__(self, dense_layers, l2, n_samples, batch_size):
        self.layers = dense_layers
        short = n_samples % batch_size
        self.nominal = regularizers.L2(l2 / batch_size) if l2 > 0 else None
        self.short = regularizers.L2(l2 / short) if l2 > 0 and short else None
        self.before_short = -(-n_samples // batch_size) - 2  # index of the batch before it
        self._use(self.nominal)

    def _use(self, regularizer):
        for layer in self.layers:
            layer.kernel_regularizer = regularizer

    def on_epoch_begin(self, epoch, logs=None):
        self._use(self.nominal)

    def on_batch_end(self, batch, logs=None):
        if self.short is not None and batch == self.before_short:
            self._use(self.short)

    def on_train_end(self, logs=None):
        self._use(self.nominal)


class _BaseMLP(BaseEstimator):
    """Shared by `MLPClassifier` and `MLPRegressor`; see their docstrings."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=0.0,
                 batch_norm=False, standardize=False, sparsity=0.0, dtype="float32",
                 n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.standardize = standardize
        self.sparsity = sparsity
        self.dtype = dtype
        self.n_threads = n_threads

    # -- parameters --------------------------------------------------------
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                   for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes}.")
        return [int(s) for s in sizes]

    def _check_params(self):
        """ValueError (TypeError for a non-number) for a bad parameter, before any work."""
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not available in fastnn: use 'adam' or 'sgd'")
        check_choice(self.solver, "solver", _SOLVERS)
        check_choice(self.learning_rate, "learning_rate", _LEARNING_RATES)
        activations.get(_ACTIVATIONS.get(self.activation, self.activation))
        if self.batch_size != "auto":
            check_int(self.batch_size, "batch_size", 1)
        check_real(self.alpha, "alpha", 0.0)
        check_real(self.learning_rate_init, "learning_rate_init", 0.0, closed="right")
        check_real(self.power_t, "power_t", 0.0)
        check_int(self.max_iter, "max_iter", 1)
        check_real(self.tol, "tol", 0.0)
        check_real(self.momentum, "momentum", 0.0, 1.0)
        check_real(self.validation_fraction, "validation_fraction", 0.0, 1.0, closed="neither")
        check_real(self.beta_1, "beta_1", 0.0, 1.0, closed="left")
        check_real(self.beta_2, "beta_2", 0.0, 1.0, closed="left")
        check_real(self.epsilon, "epsilon", 0.0, closed="right")
        check_int(self.n_iter_no_change, "n_iter_no_change", 1)
        check_real(self.dropout, "dropout", 0.0, 1.0, closed="left")
        check_real(self.sparsity, "sparsity", 0.0, 1.0, closed="left")
        check_choice(str(self.dtype), "dtype", ("float32", "float64"))
        if self.n_threads is not None:
            check_int(self.n_threads, "n_threads", 1)

    # -- input ---------------------------------------------------------------
    def _validate_X(self, X, reset):
        # NaN and infinity are left to the engine, whose check raises as scikit-learn's
        # does: one pass over X, not two.
        if (not reset and type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 0
                and X.shape[1] == getattr(self, "n_features_in_", -1)
                and X.dtype == np.dtype(str(self.dtype)) and X.flags.c_contiguous
                and not hasattr(self, "feature_names_in_")):
            # What validate_data would return unchanged, without its checks (50 us, a
            # hundredth of predict_proba on 12,500 rows of 100 features)
            return X
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=reset,
                          dtype=np.dtype(str(self.dtype)), ensure_all_finite=False)
        return X.toarray() if hasattr(X, "toarray") else X

    def _validate_Xy(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=not isinstance(self, ClassifierMixin), reset=reset,
                             dtype=np.dtype(str(self.dtype)))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return (X.toarray() if hasattr(X, "toarray") else X), y

    # -- training ------------------------------------------------------------
    def _build(self, X, n_outputs, out_activation, loss):
        """A compiled `Sequential` for scikit-learn's architecture (its initialisation)."""
        act = _ACTIVATIONS.get(self.activation, self.activation)
        # Glorot-uniform bounds, sqrt(2 / fans) for the logistic as scikit-learn.
        init = {"class_name": "VarianceScaling", "config": {
            "scale": 1.0 / 3.0 if act == "sigmoid" else 1.0, "mode": "fan_avg",
            "distribution": "uniform"}}
        stack = [L.Normalization().adapt(X)] if self.standardize else []
        for units in self._hidden_sizes():
            stack.append(L.Dense(units, activation=act, kernel_initializer=initializers.get(init)))
            if self.batch_norm:
                stack.append(L.BatchNormalization())
            if self.dropout:
                stack.append(L.Dropout(self.dropout))
        stack.append(L.Dense(n_outputs, activation=out_activation,
                             kernel_initializer=initializers.get(init)))
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        model = Sequential(stack, input_dim=X.shape[1], dtype=str(self.dtype), seed=int(seed))
        model.compile(self._optimizer(), loss)
        return model

    def _optimizer(self):
        if self.solver == "adam":
            return optimizers.Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                                   eps=self.epsilon)
        nesterov = bool(self.nesterovs_momentum) and self.momentum > 0
        return optimizers.SGD(lr=self.learning_rate_init / self._loss_scale,
                              momentum=self.momentum, nesterov=nesterov)

    def _fit(self, X, y, sample_weight, incremental):
        self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = self._validate_Xy(X, y, reset=first)
        # From here on model_ changes: predictions need the engine of a finished fit (or of
        # the last finite weights after a divergence), never the previous fit's.
        self.__dict__.pop("_engine", None)
        targets, n_outputs, out_activation, loss, scale, classes = self._encode(y, incremental,
                                                                               first)
        if sample_weight is not None:
            # scaled to mean 1: the loss is then a weighted mean, as scikit-learn's
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            total = sample_weight.sum()
            if total > 0:
                sample_weight = sample_weight * (len(sample_weight) / total)
        if first:
            self._loss_scale = scale
            self.n_outputs_ = n_outputs
            self.out_activation_ = {"sigmoid": "logistic", "linear": "identity"}.get(
                out_activation, out_activation)
            self.n_layers_ = len(self._hidden_sizes()) + 2
            self.model_ = self._build(X, n_outputs, out_activation, loss)
            self.model_.classes = classes
            self.t_ = 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        elif not incremental:
            self.model_.compile(self._optimizer(), self.model_.loss)  # scikit-learn's fresh solver
        model = self.model_
        self.n_iter_ = 0  # epochs of this call, as scikit-learn counts them
        validation = None
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
            stratify = None  # scikit-learn stratifies single-output classification
            if isinstance(self, ClassifierMixin) and (n_outputs == 1 or targets.ndim == 1):
                stratify = targets.reshape(len(targets), -1)[:, 0]
            parts = train_test_split(X, targets, *(() if sample_weight is None else
                                                   (sample_weight,)),
                                     random_state=check_random_state(self.random_state),
                                     test_size=self.validation_fraction, stratify=stratify)
            X, X_val, targets, t_val = parts[:4]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            w_val = None
            if sample_weight is not None:
                sample_weight, w_val = parts[4:]
            validation = (X_val, self._decode_targets(t_val), w_val)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))
        l2 = _BatchL2([layer for layer in model.layers if isinstance(layer, L.Dense)],
                      0.5 * self.alpha * self._loss_scale, n, batch_size)
        progress = _Progress(self, n, validation)
        try:
            model.fit(X, targets, epochs=1 if incremental else self.max_iter,
                      batch_size=batch_size, shuffle=bool(self.shuffle),
                      callbacks=[l2, progress], verbose=0, sample_weight=sample_weight)
        except callbacks.NonFiniteLossError:
            # predictions follow model_ (its last finite weights), as coefs_ does
            self._engine = self.deploy(max_batch=MAX_BATCH)
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.") from None
        if progress.best_weights is not None:
            model.set_weights(progress.best_weights)
        if not incremental and not progress.stopped and self.n_iter_ >= self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)
        if self.sparsity and not incremental:
            pruning.prune_magnitude(model, self.sparsity)
            # fine-tune the surviving weights (pruned ones stay zero), a fifth of the epochs
            model.fit(X, targets, epochs=max(1, self.n_iter_ // 5), batch_size=batch_size,
                      shuffle=bool(self.shuffle), callbacks=[l2], verbose=0,
                      sample_weight=sample_weight)
        # predictions come in large batches: chunks as large as the engine's scratch allows
        self._engine = self.deploy(max_batch=MAX_BATCH)
        return self

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y) for up to `max_iter` epochs; returns self.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
        """
        return self._fit(X, y, sample_weight, incremental=False)

    # -- fitted attributes and prediction ------------------------------------
    @property
    def coefs_(self):
        """The kernels of the Dense layers (the model's own arrays)."""
        return [layer.kernel for layer in self.model_.layers if isinstance(layer, L.Dense)]

    @property
    def intercepts_(self):
        """The biases of the Dense layers (the model's own arrays)."""
        return [layer.bias for layer in self.model_.layers if isinstance(layer, L.Dense)]

    def deploy(self, **engine_options):
        """An `InferenceEngine` for the fitted model (``n_threads`` from the estimator)."""
        check_is_fitted(self)
        engine_options.setdefault("n_threads", self.n_threads)
        return deploy(self.model_, **engine_options)

    def _outputs(self, X):
        """The network's outputs for X, as float64 like scikit-learn's predictions."""
        check_is_fitted(self, "_engine")  # a fit that failed part-way made none
        return self._engine.predict(self._validate_X(X, reset=False)).astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier with scikit-learn's interface, trained by fastnn.

    Parameters are scikit-learn's `sklearn.neural_network.MLPClassifier` parameters
    (``solver`` is "adam" or "sgd"; ``activation`` also takes every fastnn activation
    name), plus:

    dropout : float in [0, 1), default 0.0
        Dropout rate after every hidden layer.
    batch_norm : bool, default False
        BatchNormalization after every hidden layer (folded away by `deploy`).
    standardize : bool, default False
        A `fastnn.layers.Normalization` first, adapted to the features of the first
        `fit` (folded into the first Dense layer by `deploy`).
    sparsity : float in [0, 1), default 0.0
        After `fit`, zero this fraction of the kernel weights (smallest magnitudes
        first) and fine-tune the rest for ``max(1, n_iter_ // 5)`` epochs.
    dtype : {"float32", "float64"}, default "float32"
        Weights and computation.
    n_threads : int, optional
        Threads of predictions; default the global `fastnn.set_num_threads` setting.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_, coefs_, intercepts_, loss_, loss_curve_,
    best_loss_, validation_scores_, best_validation_score_, n_iter_, t_, n_layers_,
    n_outputs_, out_activation_
        As scikit-learn's.
    model_ : fastnn.Sequential
        The trained network.
    """

    def _encode(self, y, incremental, first):
        """(targets, n_outputs, output activation, loss, loss scale, model classes)."""
        if not incremental and first:
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        elif not incremental:
            if set(unique_labels(y)) != set(self.classes_):
                raise ValueError(f"warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {unique_labels(y)}")
        elif self._label_binarizer.y_type_ != "multilabel-indicator" \
                and len(np.setdiff1d(unique_labels(y), self.classes_)):
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                             f"{self.classes_}. 'y' has {unique_labels(y)}.")
        lb = self._label_binarizer
        if lb.y_type_ == "multilabel-indicator":
            Y = lb.transform(y).astype(str(self.dtype))
            return Y, Y.shape[1], "sigmoid", "binary_crossentropy", 1.0 / Y.shape[1], None
        k = len(self.classes_)
        if k == 1:  # one class seen: one unit that learns to say "not the positive class"
            return np.zeros((len(y), 1), dtype=str(self.dtype)), 1, "sigmoid", \
                "binary_crossentropy", 1.0, None
        # the labels themselves: the model encodes them by its `classes`
        if k == 2:
            return y, 1, "sigmoid", "binary_crossentropy", 1.0, self.classes_
        return y, k, "softmax", "sparse_categorical_crossentropy", 1.0, self.classes_

    def _decode_targets(self, targets):
        """Labels of the targets given to the model (indicator rows for multi-label)."""
        return self._label_binarizer.inverse_transform(targets) if targets.ndim == 2 \
            else targets

    def _labels(self, P):
        """Labels of the network's outputs P: argmax, or p > 0.5 per sigmoid unit."""
        return self._label_binarizer.inverse_transform(P[:, 0] if P.shape[1] == 1 else P)

    def _score_checked(self, X, y, sample_weight):
        """Accuracy on validated X (the validation score of early stopping)."""
        return accuracy_score(y, self._labels(self.model_.predict(X)),
                              sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); the first call needs ``classes`` (all labels)."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel")
                                      else classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Class labels, shape (n_samples,) or (n_samples, n_classes) for multi-label."""
        return self._labels(self._outputs(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the order of `classes_`."""
        P = self._outputs(X)
        if P.shape[1] == 1:
            return np.hstack([1 - P, P])
        return P

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor with scikit-learn's interface, trained by fastnn.

    Squared error, identity outputs; one or several targets. Parameters and attributes
    as `MLPClassifier` (without ``classes_``).
    """

    def _encode(self, y, incremental, first):
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if not first and n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} outputs but the model was fitted with "
                             f"{self.n_outputs_}")
        return y.astype(str(self.dtype)), n_outputs, "linear", "mse", 2.0, None

    @staticmethod
    def _decode_targets(targets):
        return targets

    def _score_checked(self, X, y, sample_weight):
        """R^2 on validated X (the validation score of early stopping)."""
        P = self.model_.predict(X)
        return r2_score(y, P[:, 0] if P.shape[1] == 1 else P, sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions, shape (n_samples,) or (n_samples, n_outputs)."""
        P = self._outputs(X)
        return P[:, 0] if P.shape[1] == 1 else P
