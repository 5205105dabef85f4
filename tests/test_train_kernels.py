"""The compiled training step (fastnn._kernels.train.DenseTrainer) against the layer-by-layer
step it replaces, finite differences, thread counts and the rollback of a bad update."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import callbacks as cb
from fastnn import layers as L
from fastnn._kernels import dense as K

from conftest import numeric_gradient


def _model(dtype, acts=("relu", "tanh"), out="softmax", loss="sparse_categorical_crossentropy",
           optimizer=None, use_bias=True, reg=None, n_in=24, n_out=5, seed=0, hidden=None):
    """Hidden layers of `hidden` units (16, 24, ... by default): from 32 units a float32
    layer's weight gradient runs on the packed kernel where the CPU has AVX-512F."""
    hidden = hidden or [16 + 8 * i for i in range(len(acts))]
    layers = [L.Dense(units, activation=a, use_bias=use_bias, kernel_regularizer=reg)
              for units, a in zip(hidden, acts)]
    model = fn.Sequential(layers + [L.Dense(n_out, activation=out, use_bias=use_bias)],
                          input_dim=n_in, dtype=dtype, seed=seed)
    model.compile(optimizer or fn.optimizers.Adam(lr=1e-2), loss)
    return model


def _layer_by_layer(model):
    """The model's steps without the trainer: the path every other model takes."""
    model._compiled_l2 = lambda: None
    return model


def _data(n=203, n_in=24, n_out=5, seed=1, regression=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    y = rng.standard_normal((n, n_out)) if regression else rng.integers(0, n_out, n)
    return X, y


CASES = [
    dict(),
    dict(acts=("leaky_relu", "sigmoid"), reg=fn.regularizers.L2(1e-3)),
    dict(acts=("selu", "gelu"), use_bias=False),
    dict(acts=("relu",), out="linear", loss="mse", regression=True),
    dict(acts=("elu", "relu"), out="sigmoid", loss="binary_crossentropy", binary=True),
    dict(optimizer="sgd_momentum"),
    dict(loss="categorical_crossentropy", onehot=True, weighted=True),
    dict(acts=("relu",), weighted=True, reg=fn.regularizers.L2(1e-2)),
    dict(acts=("relu", "tanh"), hidden=(45, 33), reg=fn.regularizers.L2(1e-3)),
]


def _case(case, dtype):
    case = dict(case)
    regression = case.pop("regression", False)
    binary = case.pop("binary", False)
    onehot = case.pop("onehot", False)
    weighted = case.pop("weighted", False)
    if case.get("optimizer") == "sgd_momentum":
        case["optimizer"] = fn.optimizers.SGD(lr=0.05, momentum=0.9, nesterov=True)
    X, y = _data(regression=regression or binary)
    if binary:
        y = (y > 0).astype(float)
    if onehot:
        y = np.eye(5)[y]
    w = np.random.default_rng(3).uniform(0, 2, len(X)) if weighted else None
    return case, X, y, w


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", range(len(CASES)))
def test_the_compiled_step_trains_as_the_layer_by_layer_step(dtype, k):
    case, X, y, w = _case(CASES[k], dtype)
    fresh = lambda: _model(dtype, **{**case, "optimizer": _case(CASES[k], dtype)[0].get(
        "optimizer")})
    a, b = fresh(), _layer_by_layer(fresh())
    assert a._compiled_l2() is not None
    ha = a.fit(X, y, epochs=3, batch_size=64, verbose=0, sample_weight=w)
    hb = b.fit(X, y, epochs=3, batch_size=64, verbose=0, sample_weight=w)
    tol = 2e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=tol)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(p, q, rtol=tol, atol=tol)
    for p, q in zip(a.optimizer.get_state(), b.optimizer.get_state()):
        np.testing.assert_allclose(p, q, rtol=tol, atol=tol)


@pytest.mark.parametrize("hidden", [None, (33, 40)])
@pytest.mark.parametrize("packed", [True, False])
def test_the_compiled_step_gives_the_gradients_of_finite_differences(packed, hidden):
    """float64 (BLAS) and float32 (packed kernels where the CPU has them): an SGD step of
    learning rate 0 leaves the weights and leaves each layer's gradient of the batch. The
    float32 gradients of layers of 32 units or more (`hidden`) are held to float64's: their
    finite differences in float32 are too noisy to tell 2% apart."""
    K.use_packed(packed)
    grads = {}
    try:
        for dtype, tol in (("float64", 1e-6), ("float32", 2e-2)):
            model = _model(dtype, acts=("tanh", "sigmoid"), reg=fn.regularizers.L2(0.01),
                           optimizer=fn.optimizers.SGD(lr=0.0), n_in=6, n_out=3,
                           hidden=hidden)
            X, y = _data(n=37, n_in=6, n_out=3)
            model.fit(X, y, epochs=1, batch_size=37, shuffle=False, verbose=0)
            Xc = np.ascontiguousarray(X, dtype=dtype)

            def loss():
                out = model.predict(Xc)
                value, _ = model.loss(model._check_y(y, 37), out)
                return value + model._penalty()

            grads[dtype] = [grad.copy() for layer in model.layers for grad in layer.grads]
            if dtype == "float32" and hidden is not None:
                continue
            for layer in model.layers:
                for param, grad in zip(layer.params, layer.grads):
                    np.testing.assert_allclose(grad, numeric_gradient(loss, param, 1e-6 if
                                               dtype == "float64" else 1e-3),
                                               rtol=tol, atol=tol * 1e-2)
    finally:
        K.use_packed(None)
    for g32, g64 in zip(grads["float32"], grads["float64"]):
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5 * np.abs(g64).max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_compiled_step_is_bitwise_identical_for_any_thread_count(dtype):
    X, y = _data(n=517, n_in=300)

    def train(threads):
        fn.set_num_threads(threads)
        try:
            model = fn.Sequential([L.Dense(256, activation="relu",
                                           kernel_regularizer=fn.regularizers.L2(1e-4)),
                                   L.Dense(128, activation="relu"),
                                   L.Dense(5, activation="softmax")],
                                  input_dim=300, dtype=dtype, seed=0)
            model.compile(fn.optimizers.Adam(lr=1e-3), "sparse_categorical_crossentropy")
            model.fit(X, y, epochs=2, batch_size=256, verbose=0)
            model.fit(X, y, epochs=2, batch_size=32, verbose=0)  # many short steps
            return model.get_weights() + model.optimizer.get_state()
        finally:
            fn.set_num_threads(None)

    # More threads than cores too: a thread that waits at the step's barriers for one
    # that is not running sleeps after its spin (team_barrier.h).
    runs = [train(n) for n in (1, 2, 3, 4)]
    for run in runs[1:]:
        for a, c in zip(run, runs[0]):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_update_that_overflows_is_undone_with_the_optimizer_state(optimizer):
    """The forward pass and the loss are finite; the update is not: parameters, optimizer
    state and step count are as before the step."""
    opt = fn.optimizers.SGD(lr=1e-3, momentum=0.9) if optimizer == "sgd" else \
        fn.optimizers.Adam(lr=1e-3)
    model = _model("float32", out="linear", loss="mse", optimizer=opt)
    X, y = _data(regression=True)
    model.fit(X[:64], y[:64], epochs=1, batch_size=64, verbose=0)  # a finite step
    model.optimizer.learning_rate = 1e35 if optimizer == "sgd" else 1e39
    before = model.get_weights() + [s.copy() for s in model.optimizer.get_state()]
    assert model._compiled_l2() is not None
    with pytest.raises(cb.NonFiniteLossError, match="non-finite"):
        model.fit(X[64:128], y[64:128] * 1e8, epochs=1, batch_size=64, verbose=0)
    after = model.get_weights() + model.optimizer.get_state()
    assert len(after) == len(before)
    for a, c in zip(before, after):
        np.testing.assert_array_equal(a, c)


def test_what_the_trainer_cannot_fuse_takes_the_layer_by_layer_step():
    model = _model("float32")
    assert model._compiled_l2() == [0.0, 0.0, 0.0]
    model.layers[0].kernel_regularizer = fn.regularizers.L1(0.01)
    assert model._compiled_l2() is None
    model.layers[0].kernel_regularizer = fn.regularizers.L2(0.5)
    assert model._compiled_l2() == [0.5, 0.0, 0.0]
    model.layers[1].kernel_constraint = fn.constraints.get("max_norm")
    assert model._compiled_l2() is None
    model.layers[1].kernel_constraint = None
    model.compile(fn.optimizers.Adam(), "sparse_categorical_crossentropy", clipnorm=1.0)
    assert model._compiled_l2() is None
    with_dropout = fn.Sequential([L.Dense(8, activation="relu"), L.Dropout(0.5), L.Dense(3)],
                                 input_dim=4)
    with_dropout.compile("adam", "mse")
    assert with_dropout._compiled_l2() is None


def test_the_trainer_refuses_arrays_that_do_not_fit():
    """Its arguments are checked before any pointer is used: wrong shapes, dtypes, rows
    out of range or another optimizer's plan raise, nothing is written."""
    from fastnn._kernels.train import DenseTrainer
    model = _model("float32")
    X, y = _data()
    model.fit(X[:64], y[:64], epochs=1, batch_size=64, verbose=0)
    trainer, opt = model._trainer, model.optimizer
    before = model.get_weights()
    X32, labels = X.astype(np.float32), y.astype(np.int64)
    fresh = DenseTrainer(model._trainer_layers())
    with pytest.raises(RuntimeError, match="forward"):
        fresh.backward_step(np.zeros((4, 5), np.float32), True, *opt.begin_step(
            model._params, model._grads), [0.0] * 3, 1)
    opt.cancel_step()
    cases = [
        dict(X=X),                                              # float64 for a float32 model
        dict(X=X32[:, :10]),                                    # width
        dict(rows=np.array([0, len(X)], dtype=np.intp)),        # a row out of range
        dict(rows=np.array([0, 1], dtype=np.int32)),            # not intp
        dict(labels=labels[:10].astype(np.int32)),              # not int64
        dict(labels=labels[:9]),                                # one label short
        dict(weights=np.ones(9)),                               # one weight short
        dict(labels=None, targets=np.zeros((10, 4), np.float32)),  # width of the targets
    ]
    other = fn.optimizers.Adam()
    other_plan = other.begin_step([p.copy() for p in model._params],
                                  [g.copy() for g in model._grads])
    for case in cases + [dict(plan=other_plan)]:
        args = dict(X=X32, rows=np.arange(10, dtype=np.intp), labels=labels[:10],
                    targets=None, weights=None)
        args.update(case)
        plan = args.pop("plan", None) or opt.begin_step(model._params, model._grads)
        with pytest.raises((ValueError, IndexError)):
            trainer.train_step(args["X"], args["rows"], args["labels"], args["targets"],
                               args["weights"], 0.0, *plan, [0.0] * 3, 1)
        if "plan" not in case:
            opt.cancel_step()
    out, _ = trainer.forward(X32[:8], 1)
    with pytest.raises(ValueError, match="dY"):
        trainer.backward_step(np.zeros((7, 5), np.float32), True,
                              *opt.begin_step(model._params, model._grads), [0.0] * 3, 1)
    opt.cancel_step()
    for a, c in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, c)


def test_the_trainer_refuses_layers_that_do_not_chain_and_batches_it_cannot_run():
    from fastnn._kernels.train import DenseTrainer
    model = _model("float32")
    X, y = _data()
    model.fit(X[:64], y[:64], epochs=1, batch_size=64, verbose=0)
    steps = model._trainer_layers()
    wide = list(steps)
    wide[1] = (np.zeros((4000, 5), np.float32),) + steps[1][1:]
    mixed = list(steps)
    mixed[1] = tuple(a.astype(np.float64) if isinstance(a, np.ndarray) else a
                     for a in steps[1])
    for layers in (wide, mixed, []):
        with pytest.raises(ValueError):
            DenseTrainer(layers)
    no_logits = list(steps)
    no_logits[-1] = steps[-1][:6] + (False,) + steps[-1][7:]
    X32, labels = np.ascontiguousarray(X[:10], np.float32), y[:10].astype(np.int64)
    opt = model.optimizer
    for trainer, batch in ((DenseTrainer(no_logits), X32), (model._trainer, X32[:0])):
        with pytest.raises(ValueError):
            trainer.train_step(batch, None, labels[:len(batch)], None, None, 0.0,
                               *opt.begin_step(model._params, model._grads), [0.0] * 3, 1)
        opt.cancel_step()
    with pytest.raises(ValueError, match="empty"):
        model._trainer.forward(X32[:0], 1)
    model.layers.append(L.Dense(3))  # a layer added after compile: the trainer is stale
    assert model._compiled_l2() is None
