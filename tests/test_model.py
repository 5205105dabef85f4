import json
import os
import pickle
import struct

import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn.datasets import load_digits, make_circles, train_test_split


def _mlp(input_dim=4, hidden=8, out=3, act="softmax", dtype="float32", seed=0, **dense_kw):
    return fn.Sequential([L.Dense(hidden, activation="relu", **dense_kw),
                          L.Dense(out, activation=act)], input_dim=input_dim, dtype=dtype,
                         seed=seed)


def _blobs(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centers = rng.standard_normal((k, d)) * 3
    return centers[y] + rng.standard_normal((n, d)), y


# -- training -------------------------------------------------------------------------
def test_fit_learns_and_reports_history():
    X, y = _blobs()
    model = _mlp()
    model.compile(optimizer=fn.optimizers.Adam(lr=1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(X, y, epochs=30, batch_size=16, validation_split=0.25, verbose=0)
    h = history.history
    assert len(h["loss"]) == 30 and history.epoch == list(range(30))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(h)
    assert h["loss"][-1] < h["loss"][0] / 3
    assert h["val_accuracy"][-1] >= 0.9
    result = model.evaluate(X, y)
    assert set(result) == {"loss", "accuracy"} and result["accuracy"] >= 0.9
    pred = model.predict(X)
    assert pred.shape == (120, 3) and pred.dtype == np.float32
    np.testing.assert_allclose(pred.sum(axis=1), 1, rtol=1e-5)


def test_same_seed_gives_same_weights_and_threads_do_not_matter():
    X, y = _blobs(200)

    def train(threads):
        fn.set_num_threads(threads)
        try:
            model = fn.Sequential([L.Dense(16, activation="relu"), L.Dropout(0.2),
                                   L.GaussianNoise(0.1), L.Dense(3, activation="softmax")],
                                  input_dim=4, seed=7)
            model.compile("adam", "sparse_categorical_crossentropy")
            model.fit(X, y, epochs=3, batch_size=32, verbose=0)
            return model.get_weights()
        finally:
            fn.set_num_threads(None)

    for a, b in zip(train(1), train(2)):
        np.testing.assert_array_equal(a, b)


def test_validation_split_takes_the_last_fraction():
    X, y = _blobs(100)
    a, b = _mlp(seed=1), _mlp(seed=1)
    for m in (a, b):
        m.compile(fn.optimizers.SGD(lr=0.1), "sparse_categorical_crossentropy")
    ha = a.fit(X, y, epochs=2, batch_size=10, validation_split=0.2, shuffle=False, verbose=0)
    hb = b.fit(X[:80], y[:80], epochs=2, batch_size=10, validation_data=(X[80:], y[80:]),
               shuffle=False, verbose=0)
    assert ha.history["val_loss"] == hb.history["val_loss"]


def test_class_weight_matches_sample_weight():
    X, y = _blobs(60)
    a, b = _mlp(seed=2), _mlp(seed=2)
    for m in (a, b):
        m.compile(fn.optimizers.SGD(lr=0.1), "sparse_categorical_crossentropy")
    a.fit(X, y, epochs=2, batch_size=20, shuffle=False, verbose=0,
          class_weight={0: 1.0, 1: 0.5, 2: 2.0})
    b.fit(X, y, epochs=2, batch_size=20, shuffle=False, verbose=0,
          sample_weight=np.array([1.0, 0.5, 2.0])[y])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_global_clipnorm_bounds_the_update():
    X, y = _blobs(32)
    model = _mlp(dtype="float64")
    model.compile(fn.optimizers.SGD(lr=1.0), "sparse_categorical_crossentropy",
                  global_clipnorm=1e-3)
    before = model.get_weights()
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    step = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(model.get_weights(), before)))
    assert step == pytest.approx(1e-3, rel=1e-9)


def test_fit_matches_torch_step_by_step():
    torch = pytest.importorskip("torch")
    X, y = _blobs(40, d=5, k=3)
    model = fn.Sequential([L.Dense(6, activation="tanh"), L.Dense(3, activation="softmax")],
                          input_dim=5, dtype="float64", seed=3)
    model.compile(fn.optimizers.SGD(lr=0.1, momentum=0.9), "sparse_categorical_crossentropy")
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    net = net.double()
    with torch.no_grad():
        w = model.get_weights()
        net[0].weight.copy_(torch.from_numpy(w[0].T))
        net[0].bias.copy_(torch.from_numpy(w[1]))
        net[2].weight.copy_(torch.from_numpy(w[2].T))
        net[2].bias.copy_(torch.from_numpy(w[3]))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for start in range(0, 40, 10):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt[start:start + 10]), yt[start:start + 10]).backward()
        opt.step()
    model.fit(X, y, epochs=1, batch_size=10, shuffle=False, verbose=0)
    w = model.get_weights()
    np.testing.assert_allclose(w[0], net[0].weight.detach().numpy().T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w[3], net[2].bias.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_model_gradients_by_finite_differences():
    X, y = _blobs(12, d=3, k=2)
    model = fn.Sequential([L.Dense(5, activation="tanh"), L.BatchNormalization(),
                           L.PReLU(), L.Dense(4, activation="gelu"),
                           L.Maxout(3, pieces=2), L.Dense(2, activation="softmax")],
                          input_dim=3, dtype="float64", seed=4)
    model.compile("sgd", "sparse_categorical_crossentropy")
    yb = model.loss.check_targets(y, 2)

    def loss():
        saved = [l.running_mean.copy() for l in model.layers if hasattr(l, "running_mean")]
        out = model._forward(X, training=True)
        value, grad = model._loss_and_grad(yb, out, None)
        k = 0
        for l in model.layers:  # forward in training mode moves running stats: undo it
            if hasattr(l, "running_mean"):
                l.running_mean[...] = saved[k]
                k += 1
        return value, grad

    _, grad = loss()
    model._backward(grad)
    analytic = [g.copy() for g in model._grads]
    h = 1e-6
    for p, g in zip(model._params, analytic):
        for idx in list(np.ndindex(p.shape))[:6]:
            old = p[idx]
            p[idx] = old + h
            up = loss()[0]
            p[idx] = old - h
            down = loss()[0]
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_verbose_zero_prints_nothing_and_verbose_prints_progress(capsys):
    X, y = _blobs(40)
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=2, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    model.fit(X, y, epochs=2, verbose=1)
    captured = capsys.readouterr()
    assert "Epoch 2/2" in captured.out and "accuracy" in captured.out


def test_summary_and_count_params(capsys):
    model = _mlp()
    assert model.count_params() == 4 * 8 + 8 + 8 * 3 + 3
    text = model.summary()
    assert "dense (Dense)" in text and "dense_1 (Dense)" in text and "Nonzeros" in text
    assert str(model.count_params()) in capsys.readouterr().out


def test_gradient_report_flags_dead_and_saturated_layers():
    X, y = _blobs(50, d=4, k=2)
    model = fn.Sequential([L.Dense(8, activation="relu", bias_initializer=fn.initializers.Constant(-100)),
                           L.Dense(6, activation="sigmoid",
                                   kernel_initializer=fn.initializers.RandomNormal(0, 50)),
                           L.Dense(2, activation="softmax")], input_dim=4, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    before = model.get_weights()
    report = model.gradient_report(X, y)
    rows = {r["layer"]: r for r in report.rows}
    assert "dead" in rows["dense"]["flag"] and rows["dense"]["dead_fraction"] == 1.0
    assert "vanishing" in rows["dense"]["flag"]
    assert set(report.to_dict()) == {"dense", "dense_1", "dense_2"}
    assert "grad_norm" in str(report)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- the seeds' experiments ------------------------------------------------------------
def _circles_run(initializer, iterations=3000):
    X, y = make_circles(n_samples=300, noise=0.05, factor=0.5, random_state=1)
    model = fn.Sequential([L.Dense(10, activation="relu", kernel_initializer=initializer),
                           L.Dense(5, activation="relu", kernel_initializer=initializer),
                           L.Dense(3, activation="relu", kernel_initializer=initializer),
                           L.Dense(1, activation="sigmoid", kernel_initializer=initializer)],
                          input_dim=2, dtype="float64", seed=0)
    model.compile(fn.optimizers.SGD(lr=0.01), "binary_crossentropy", metrics=["accuracy"])
    initial = model.evaluate(X, y)["loss"]
    model.fit(X, y, epochs=iterations, batch_size=len(X), shuffle=False, verbose=0)
    return dict(model.evaluate(X, y), initial_loss=initial)


def test_initialisation_experiment_on_circles():
    zeros = _circles_run("zeros")
    assert zeros["loss"] == pytest.approx(np.log(2), abs=1e-4)
    assert zeros["accuracy"] == pytest.approx(0.5)
    large = _circles_run(fn.initializers.RandomNormal(0.0, 10.0))
    he = _circles_run("he_normal")
    assert he["accuracy"] >= 0.95
    # Large weights start with a huge loss and stay far behind He initialisation.
    assert large["initial_loss"] > 100 * he["initial_loss"]
    assert large["loss"] > 10 * he["loss"] and large["accuracy"] < he["accuracy"] - 0.1


def test_digits_mlp_reaches_97_percent():
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25,
                                                        random_state=0)
    model = fn.Sequential([L.Dense(128, activation="relu", kernel_initializer="he_normal"),
                           L.Dropout(0.1), L.Dense(10, activation="softmax")],
                          input_dim=64, seed=0)
    model.compile(fn.optimizers.Adam(lr=2e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=40, batch_size=32, verbose=0)
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.97


# -- bad input ----------------------------------------------------------------------------
@pytest.fixture
def compiled():
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_wrong_feature_count_names_the_layer_and_shapes(compiled):
    with pytest.raises(ValueError, match=r"layer 'dense' \(Dense\).*\(n, 4\).*\(5, 7\)"):
        compiled.predict(np.zeros((5, 7)))
    with pytest.raises(ValueError, match=r"\(n, 4\).*\(5, 3\)"):
        compiled.fit(np.zeros((5, 3)), np.zeros(5, int), verbose=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected_before_training(compiled, bad):
    X, y = _blobs(10)
    before = compiled.get_weights()
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinite"):
        compiled.fit(Xb, y, verbose=0)
    reg = _mlp(out=1, act="linear")
    reg.compile("sgd", "mse")
    yb = y.astype(float)
    yb[2] = bad
    with pytest.raises(ValueError, match="y contains NaN or infinite"):
        reg.fit(X, yb, verbose=0)
    for a, b in zip(before, compiled.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_labels_outside_the_output_width(compiled):
    X, _ = _blobs(10)
    with pytest.raises(ValueError, match="4 distinct labels but the output of 3 units takes 3"):
        compiled.fit(X, np.arange(10) % 4, verbose=0)


def test_empty_and_mismatched_data(compiled):
    with pytest.raises(ValueError, match="X is empty"):
        compiled.fit(np.zeros((0, 4)), np.zeros(0, int), verbose=0)
    with pytest.raises(ValueError, match=r"X has 10 samples but y has shape \(9,\)"):
        compiled.fit(np.zeros((10, 4)), np.zeros(9, int), verbose=0)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'relux'.*relu"):
        L.Dense(3, activation="relux")
    with pytest.raises(ValueError, match="unknown initializer 'he_normall'.*he_normal"):
        L.Dense(3, kernel_initializer="he_normall")
    model = _mlp()
    with pytest.raises(ValueError, match="unknown loss 'mse2'.*mse"):
        model.compile("adam", "mse2")
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*adam"):
        model.compile("adamm", "mse")


def test_predict_before_build_and_bad_batch_size(compiled):
    model = fn.Sequential([L.Dense(2)])
    with pytest.raises(RuntimeError, match="not built"):
        model.predict(np.zeros((1, 3)))
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            compiled.fit(np.zeros((4, 4)), np.zeros(4, int), batch_size=bad, verbose=0)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_range(rate):
    with pytest.raises(ValueError, match="dropout rate"):
        L.Dropout(rate)


def test_diverging_training_keeps_finite_weights():
    X, y = _blobs(64)
    model = _mlp(out=1, act="linear", dtype="float32")
    model.compile(fn.optimizers.SGD(lr=1e6), "mse")
    with pytest.raises(fn.callbacks.NonFiniteLossError) as info:
        model.fit(X * 1e3, y * 1e3, epochs=50, batch_size=8, verbose=0)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert info.value.history is not None


# -- saving -------------------------------------------------------------------------------
def _trained(tmp_path, **kw):
    X, y = _blobs(60)
    model = fn.Sequential([L.Dense(8, activation="relu",
                                   kernel_regularizer=fn.regularizers.L2(1e-3),
                                   kernel_constraint=fn.constraints.MaxNorm(3)),
                           L.BatchNormalization(), L.PReLU(), L.Dropout(0.1),
                           L.Maxout(4, pieces=2), L.Dense(3, activation="softmax")],
                          input_dim=4, seed=5, **kw)
    model.compile(fn.optimizers.Adam(lr=fn.schedules.ExponentialDecay(1e-2, 10, 0.9)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"], clipnorm=1.0)
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    return model, X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_is_bit_exact(tmp_path, dtype):
    model, X = _trained(tmp_path, dtype=dtype)
    path = tmp_path / "model.fnn"
    model.save(path)
    loaded = fn.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(X), loaded.predict(X))
    assert loaded.get_config() == model.get_config()
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert [m for m, _ in loaded.metrics] == ["accuracy"]
    assert open(path, "rb").read(8) != b"\x80\x04"  # not a pickle


def test_sparse_kernels_shrink_the_file(tmp_path):
    model = fn.Sequential([L.Dense(300, activation="relu"), L.Dense(10)], input_dim=300, seed=0)
    dense_path, sparse_path = tmp_path / "dense.fnn", tmp_path / "sparse.fnn"
    model.save(dense_path)
    k = model.layers[0].kernel
    k[np.abs(k) < np.quantile(np.abs(k), 0.9)] = 0
    model.save(sparse_path)
    assert os.path.getsize(sparse_path) < 0.35 * os.path.getsize(dense_path)
    np.testing.assert_array_equal(fn.load_model(sparse_path).layers[0].kernel, k)


def test_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch):
    model, _ = _trained(tmp_path)
    path = tmp_path / "model.fnn"
    model.save(path)
    original = path.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fnn"]


def _rewrite_metadata(path, **changes):
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header["__metadata__"].update(changes)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])


def test_corrupted_files_raise_model_format_error(tmp_path):
    model, _ = _trained(tmp_path)
    good = tmp_path / "good.fnn"
    model.save(good)
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "random": np.random.default_rng(0).bytes(500),
        "huge header": struct.pack("<Q", 2**62) + data[8:],
        "pickle": pickle.dumps({"weights": [1, 2, 3]}),
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.fnn"
        p.write_bytes(blob)
        with pytest.raises(fn.ModelFormatError):
            fn.load_model(p)
    arch = json.loads(fn.io.load_tensors(good)[1]["architecture"])
    bad_layer = json.loads(json.dumps(arch))
    bad_layer["layers"][0]["class_name"] = "os.system"
    bad_act = json.loads(json.dumps(arch))
    bad_act["layers"][0]["config"]["activation"] = "__import__('os')"
    bad_dim = json.loads(json.dumps(arch))
    bad_dim["input_dim"] = 5
    for changes in ({"format_version": "99"}, {"format": "other"},
                    {"architecture": json.dumps(bad_layer)}, {"architecture": json.dumps(bad_act)},
                    {"architecture": json.dumps(bad_dim)}, {"architecture": "{"}):
        p = tmp_path / "edited.fnn"
        p.write_bytes(data)
        _rewrite_metadata(p, **changes)
        with pytest.raises(fn.ModelFormatError):
            fn.load_model(p)
    with pytest.raises(FileNotFoundError):
        fn.load_model(tmp_path / "missing.fnn")


def test_gradient_report_leaves_the_training_path_alone():
    X, y = _blobs(64)

    def train(report_first):
        model = fn.Sequential([L.Dense(8, activation="relu"), L.Dropout(0.3),
                               L.Dense(3, activation="softmax")], input_dim=4, seed=9)
        model.compile("adam", "sparse_categorical_crossentropy")
        if report_first:
            model.gradient_report(X, y)
        model.fit(X, y, epochs=2, batch_size=16, verbose=0)
        return model.get_weights()

    for a, b in zip(train(False), train(True)):
        np.testing.assert_array_equal(a, b)


def test_failed_fit_does_not_build_the_model():
    model = fn.Sequential([L.Dense(3)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="X has 10 samples"):
        model.fit(np.zeros((10, 4)), np.zeros(9), verbose=0)
    assert not model.built
    m = _mlp()
    m.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="class_weight"):
        m.fit(*_blobs(12), class_weight={0: -1.0}, verbose=0)


def test_malformed_sparse_metadata_raises_model_format_error(tmp_path):
    model = fn.Sequential([L.Dense(40), L.Dense(2)], input_dim=40, seed=0)
    model.layers[0].kernel[np.abs(model.layers[0].kernel) < 0.2] = 0
    path = tmp_path / "m.fnn"
    model.save(path)
    data = path.read_bytes()
    for sparse in ("5", '{"layers.0.0": 7}', '{"layers.0.0": [40, 41]}', "[]"):
        p = tmp_path / "edited.fnn"
        p.write_bytes(data)
        _rewrite_metadata(p, sparse=sparse)
        with pytest.raises(fn.ModelFormatError):
            fn.load_model(p)
    tensors, meta = fn.io.load_tensors(path)
    for name, bad in (("layers.0.0.values", np.float32(1.0)),
                      ("layers.0.0.indices", tensors["layers.0.0.indices"] + 41),
                      ("layers.0.0.indptr", tensors["layers.0.0.indptr"][::-1].copy())):
        broken = dict(tensors)
        broken[name] = np.asarray(bad)
        p = tmp_path / "broken.fnn"
        fn.io.save_tensors(p, broken, meta)
        with pytest.raises(fn.ModelFormatError):
            fn.load_model(p)


# -- training that recovers, checks at the boundary --------------------------------------
def _diverged(seed=0):
    """A regression that SGD at lr=1e6 drove to a non-finite loss."""
    X, y = _blobs(64, seed=seed)
    X, y = X * 1e3, y * 1e3
    model = _mlp(out=1, act="linear", dtype="float32", seed=seed)
    model.compile(fn.optimizers.SGD(lr=1e6), "mse")
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(fn.callbacks.NonFiniteLossError) as info:
            model.fit(X, y, epochs=50, batch_size=8, verbose=0)
    return model, X, y, info.value


@pytest.mark.parametrize("seed", [0, 1])
def test_divergence_keeps_the_last_weights_whose_loss_was_finite(seed):
    model, X, y, err = _diverged(seed)
    assert err.history is model.history
    assert len(err.history.history["loss"]) >= 1
    assert all(np.isfinite(v) for v in err.history.history["loss"])
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert np.isfinite(model.evaluate(X, y)["loss"])


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_continues_after_divergence_with_a_new_optimizer(seed):
    model, X, y, _ = _diverged(seed)
    model.compile(fn.optimizers.SGD(lr=1e-9), "mse")
    history = model.fit(X, y, epochs=3, batch_size=8, verbose=0)
    assert all(np.isfinite(v) for v in history.history["loss"])
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_continues_after_divergence_with_a_lower_learning_rate(seed):
    model, X, y, _ = _diverged(seed)
    optimizer = model.optimizer
    steps = optimizer.iterations
    optimizer.learning_rate = 1e-9
    history = model.fit(X, y, epochs=3, batch_size=8, verbose=0)
    assert model.optimizer is optimizer
    assert optimizer.iterations == steps + 3 * 8
    assert all(np.isfinite(v) for v in history.history["loss"])
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_compile_passes_clipping_to_the_optimizer():
    optimizer = fn.optimizers.SGD(lr=1.0)
    model = _mlp()
    model.compile(optimizer, "sparse_categorical_crossentropy", clipvalue=0.5)
    assert model.optimizer is optimizer and optimizer.clipvalue == 0.5
    with pytest.raises(ValueError, match="at most one"):
        model.compile(optimizer, "sparse_categorical_crossentropy", clipvalue=0.5, clipnorm=1.0)


def test_training_and_predict_skip_the_checking_kernel_wrappers(monkeypatch):
    """The model checks its inputs once; the layers call the unchecked kernel entries."""
    from fastnn._kernels import activations as ak, dense as dk
    X, y = _blobs(40)
    model = fn.Sequential([L.Dense(8, activation="elu"), L.Activation("tanh"), L.PReLU(),
                           L.Dense(3, activation="softmax")], input_dim=4, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")

    def forbidden(*args, **kwargs):
        raise AssertionError("a checking kernel wrapper ran inside the model")

    for module, name in [(dk, "dense_forward"), (dk, "dense_backward"),
                         (ak, "activation_forward"), (ak, "activation_backward"),
                         (ak, "prelu_alpha_grad")]:
        monkeypatch.setattr(module, name, forbidden)
    model.fit(X, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    model.predict(X)


def test_fit_checks_each_input_once(monkeypatch):
    from fastnn import model as model_mod
    calls = []
    original = model_mod.as_input
    monkeypatch.setattr(model_mod, "as_input",
                        lambda X, dtype, name="X", allow_empty=True: (
                            calls.append(name), original(X, dtype, name, allow_empty))[1])
    X, y = _blobs(40)
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=3, batch_size=8, validation_data=(X[:10], y[:10]), verbose=0)
    assert calls == ["X", "X_val"]
    calls.clear()
    model.fit(X, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0)
    assert calls == ["X"]


def test_the_optimizer_checks_the_parameters_once_per_fit(monkeypatch):
    checks = []
    original = fn.optimizers.Optimizer._check
    monkeypatch.setattr(fn.optimizers.Optimizer, "_check",
                        lambda self, p, g: (checks.append(1), original(self, p, g)))
    X, y = _blobs(40)
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=3, batch_size=8, verbose=0)
    assert len(checks) == 1


def test_compile_config_round_trips_into_a_fresh_compile():
    model = _mlp()
    assert model.get_compile_config() is None
    model.compile(fn.optimizers.SGD(lr=0.05, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], clipnorm=1.0)
    config = model.get_compile_config()
    other = _mlp()
    other.compile_from_config(config)
    assert other.get_compile_config() == config
    assert other.optimizer is not model.optimizer and other.optimizer.iterations == 0
    assert [name for name, _ in other.metrics] == ["accuracy"]


def test_pruning_and_deployment_use_only_the_public_model():
    import inspect
    import re

    from fastnn import deployment, pruning

    for module in (pruning, deployment):
        private = re.findall(r"\bmodel\._\w+", inspect.getsource(module))
        assert private == [], (module.__name__, private)
