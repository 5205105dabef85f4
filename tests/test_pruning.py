import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn import pruning


def _data(n=200, d=10, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.standard_normal((k, d))[y] * 2 + rng.standard_normal((n, d)), y


def _model(dtype="float64", seed=0, middle=()):
    model = fn.Sequential([L.Dense(32, activation="relu"), *middle, L.Dense(16, activation="tanh"),
                           L.Dense(3, activation="softmax")], input_dim=10, dtype=dtype, seed=seed)
    model.compile(fn.optimizers.Adam(lr=1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_global_magnitude_pruning_removes_the_smallest_weights():
    model = _model()
    kernels = [l.kernel.copy() for l in model.layers]
    biases = [l.bias.copy() for l in model.layers]
    pruning.prune_magnitude(model, 0.75)
    everything = np.concatenate([np.abs(k).ravel() for k in kernels])
    cut = np.sort(everything)[int(round(0.75 * everything.size)) - 1]
    for layer, before, bias in zip(model.layers, kernels, biases):
        np.testing.assert_array_equal(layer.kernel, np.where(np.abs(before) > cut, before, 0))
        np.testing.assert_array_equal(layer.kernel_mask, (layer.kernel != 0))
        np.testing.assert_array_equal(layer.bias, bias)
    assert pruning.sparsity(model) == pytest.approx(0.75, abs=1e-3)


def test_layer_scope_and_threshold():
    model = _model()
    pruning.prune_magnitude(model, 0.5, scope="layer")
    for layer in model.layers:
        assert np.mean(layer.kernel == 0) == pytest.approx(0.5, abs=0.01)
    model = _model()
    pruning.prune_magnitude(model, threshold=0.1)
    for layer in model.layers:
        nonzero = layer.kernel[layer.kernel != 0]
        assert np.all(np.abs(nonzero) >= 0.1)
    with pytest.raises(ValueError, match="sparsity"):
        pruning.prune_magnitude(model, 1.0)
    with pytest.raises(ValueError, match="scope"):
        pruning.prune_magnitude(model, 0.5, scope="unit")


def test_pruned_weights_stay_zero_through_fine_tuning():
    X, y = _data()
    model = _model(dtype="float32")
    model.fit(X, y, epochs=3, verbose=0)
    pruning.prune_magnitude(model, 0.8)
    zeros = [l.kernel == 0 for l in model.layers]
    model.fit(X, y, epochs=5, batch_size=16, verbose=0)
    for layer, z in zip(model.layers, zeros):
        assert np.all(layer.kernel[z] == 0)
        assert np.any(layer.kernel[~z] != 0)
    saved = model.copy()
    model.fit(X, y, epochs=1, verbose=0)
    for layer, z in zip(saved.layers, zeros):
        assert np.all(layer.kernel[z] == 0)


def _removed_by_l2(layer, amount):
    n = int(round(amount * layer.units))
    return np.argsort(np.linalg.norm(layer.kernel, axis=0), kind="stable")[:n]


@pytest.mark.parametrize("middle", [(), (L.BatchNormalization(), L.PReLU(), L.Dropout(0.3))])
def test_structured_removal_without_compensation_equals_the_masked_model(middle):
    X, y = _data()
    model = _model(middle=middle)
    model.fit(X, y, epochs=3, verbose=0)
    first = model.layers[0]
    second = [l for l in model.layers if isinstance(l, L.Dense)][1]
    gone0 = _removed_by_l2(first, 0.5)
    gone1 = _removed_by_l2(second, 0.5)
    small = pruning.prune_neurons(model, 0.5, criterion="l2")
    assert small.layers[0].units == 16
    assert [l for l in small.layers if isinstance(l, L.Dense)][1].units == 8
    masked = model.copy()
    dense = [l for l in masked.layers if isinstance(l, L.Dense)]
    dense[1].kernel[gone0] = 0  # the removed units' outgoing weights
    dense[2].kernel[gone1] = 0
    np.testing.assert_allclose(small.predict(X), masked.predict(X), rtol=1e-12, atol=1e-14)
    assert small.count_params() < model.count_params()
    assert small.loss is not None and small.optimizer is not model.optimizer


def test_compensation_brings_the_output_closer():
    X, _ = _data()
    model = fn.Sequential([L.Dense(32, activation="relu"), L.Dense(3)], input_dim=10,
                          dtype="float64", seed=1)
    reference = model.predict(X)
    plain = pruning.prune_neurons(model, 0.5, criterion="activation", X=X, compensate=False)
    compensated = pruning.prune_neurons(model, 0.5, criterion="activation", X=X)
    # The mean of the removed units' contribution is the best constant stand-in for it:
    # it removes the average error exactly and so lowers the squared error.
    np.testing.assert_allclose((compensated.predict(X) - reference).mean(axis=0), 0, atol=1e-10)
    err_plain = ((plain.predict(X) - reference) ** 2).mean()
    err_comp = ((compensated.predict(X) - reference) ** 2).mean()
    assert err_comp < 0.9 * err_plain


def _one_hidden(units=32, seed=0):
    return fn.Sequential([L.Dense(units, activation="relu"), L.Dense(3, activation="softmax")],
                         input_dim=10, dtype="float64", seed=seed)


def test_activation_criterion_removes_dead_units_first():
    X, y = _data()
    model = _one_hidden()
    model.layers[0].bias[:8] = -1e3  # units 0..7 never fire
    small = pruning.prune_neurons(model, 0.25, criterion="activation", X=X)
    np.testing.assert_array_equal(small.layers[0].kernel, model.layers[0].kernel[:, 8:])
    # dead ReLU units contribute nothing: removing them changes no output
    np.testing.assert_allclose(small.predict(X), model.predict(X), rtol=1e-12)


def test_redundancy_merges_duplicate_units_exactly():
    X, y = _data()
    model = _one_hidden()
    first, second = model.layers[0], model.layers[1]
    for dup, twin in ((5, 2), (9, 4)):
        first.kernel[:, dup] = first.kernel[:, twin]
        first.bias[dup] = first.bias[twin]
    reference = model.predict(X)
    small = pruning.prune_neurons(model, 2 / 32, criterion="redundancy", X=X)
    assert small.layers[0].units == 30
    # one unit of each duplicated pair went, so no two kept units are alike
    assert np.unique(small.layers[0].kernel, axis=1).shape[1] == 30
    np.testing.assert_allclose(small.predict(X), reference, rtol=1e-10, atol=1e-12)
    assert second.kernel.shape[0] == 32  # the input model is left as it was


def test_prune_neurons_argument_checks():
    model = _model()
    with pytest.raises(ValueError, match="needs calibration data"):
        pruning.prune_neurons(model, 0.5, criterion="activation")
    with pytest.raises(ValueError, match="criterion"):
        pruning.prune_neurons(model, 0.5, criterion="random")
    with pytest.raises(ValueError, match="amount"):
        pruning.prune_neurons(model, 1.0)


def test_sparsity_schedules_prune_during_fit():
    X, y = _data()
    model = _model(dtype="float32")
    schedule = pruning.ConstantSparsity(0.6, begin_step=5, frequency=5)
    model.fit(X, y, epochs=2, batch_size=20, callbacks=[schedule], verbose=0)
    assert pruning.sparsity(model) == pytest.approx(0.6, abs=1e-3)
    poly = pruning.PolynomialDecay(0.2, 0.8, begin_step=0, end_step=100, power=3, frequency=10)
    assert poly.target(0) == pytest.approx(0.2)
    assert poly.target(50) == pytest.approx(0.8 + (0.2 - 0.8) * 0.5 ** 3)
    assert poly.target(100) == pytest.approx(0.8) and poly.target(500) == pytest.approx(0.8)
    model = _model(dtype="float32")
    poly = pruning.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=30, frequency=10)
    model.fit(X, y, epochs=4, batch_size=20, callbacks=[poly], verbose=0)
    assert pruning.sparsity(model) == pytest.approx(0.9, abs=1e-3)


def test_prune_until_stays_within_budget():
    X, y = _data(400)
    model = _model(dtype="float32")
    model.fit(X[:300], y[:300], epochs=10, verbose=0)
    base = model.evaluate(X[300:], y[300:])["accuracy"]
    best, steps = pruning.prune_until(model, X[300:], y[300:], max_metric_drop=0.02,
                                      X_train=X[:300], y_train=y[:300], fine_tune_epochs=1)
    assert steps and all(s["within_budget"] for s in steps[:-1])
    assert base - best.evaluate(X[300:], y[300:])["accuracy"] <= 0.02 + 1e-12
    assert pruning.sparsity(best) > 0.5
    assert pruning.sparsity(model) == 0.0  # the input is left unpruned
    small, steps = pruning.prune_until(model, X[300:], y[300:], 0.02, method="neurons",
                                       step=0.25, X_train=X[:300], y_train=y[:300])
    assert small.count_params() <= model.count_params()


def test_report_counts_sizes_and_flops():
    X, y = _data()
    model = _model(dtype="float32")
    pruning.prune_magnitude(model, 0.9)
    rep = pruning.report(model, X, y)
    data = rep.to_dict()
    first = data["layers"][0]
    assert first["params"] == 10 * 32 + 32
    assert first["nonzeros"] == np.count_nonzero(model.layers[0].kernel) + 32 - np.sum(
        model.layers[0].bias == 0)
    assert first["flops_dense"] == 2 * 10 * 32
    assert first["flops_effective"] == 2 * np.count_nonzero(model.layers[0].kernel)
    assert data["total"]["params"] == model.count_params()
    assert data["total"]["sparsity"] == pytest.approx(pruning.sparsity(model))
    for key in ("accuracy", "latency_us_batch_1", "latency_us_batch_32", "latency_us_batch_256"):
        assert key in data
    text = str(rep)
    assert "bytes_deployed" in text and "total" in text


# -- block pruning -----------------------------------------------------------------------------

def _block_mask_ok(kernel, width):
    """Every block of `width` consecutive outputs of a row is all zero or all nonzero."""
    n_in, n_out = kernel.shape
    for start in range(0, n_out, width):
        chunk = kernel[:, start:start + width] != 0
        if not np.all(chunk.all(axis=1) | (~chunk).all(axis=1)):
            return False
    return True


@pytest.mark.parametrize("block", [(1, 4), (1, 8), (1, 16)])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_block_pruning_removes_whole_blocks_of_smallest_norm(block, scope):
    model = _model(seed=3)
    kernels = [l.kernel.copy() for l in model.layers]
    pruning.prune_magnitude(model, 0.6, scope=scope, block=block)
    width = block[1]
    norms = []
    for layer, before in zip(model.layers, kernels):
        assert _block_mask_ok(layer.kernel, width)
        np.testing.assert_array_equal(layer.kernel_mask, layer.kernel != 0)
        kept = layer.kernel != 0
        np.testing.assert_array_equal(layer.kernel[kept], before[kept])
        for start in range(0, before.shape[1], width):
            chunk = before[:, start:start + width]
            norms += [(n, k) for n, k in zip(np.linalg.norm(chunk, axis=1),
                                             kept[:, start].tolist())]
        if scope == "layer":
            assert np.mean(layer.kernel == 0) == pytest.approx(0.6, abs=width / layer.kernel.size
                                                               + 1e-9 + width / before.shape[1])
    if scope == "global":
        # every dropped block's norm is at most every kept block's
        dropped = max(n for n, k in norms if not k)
        assert all(n >= dropped for n, k in norms if k)
        assert pruning.sparsity(model) == pytest.approx(0.6, abs=0.02)


def test_partial_last_block_is_its_own_block():
    model = fn.Sequential([L.Dense(10, activation="relu"), L.Dense(3)], input_dim=6, seed=0)
    pruning.prune_magnitude(model, 0.5, scope="layer", block=(1, 8))
    first, last = model.layers[0].kernel, model.layers[1].kernel
    assert _block_mask_ok(first, 8)
    # the 10 outputs make a block of 8 and one of 2; the 3 outputs one block of 3
    assert {int(np.count_nonzero(row[:8])) for row in first} <= {0, 8}
    assert {int(np.count_nonzero(row[8:])) for row in first} <= {0, 2}
    assert {int(np.count_nonzero(row)) for row in last} <= {0, 3}
    assert pruning.block_structure(first) == (1, 8) or pruning.block_structure(first) == (1, 16)


def test_block_threshold_and_bad_blocks():
    model = _model()
    pruning.prune_magnitude(model, threshold=0.5, block=(1, 4))
    for layer in model.layers:
        assert _block_mask_ok(layer.kernel, 4)
    for bad in ((2, 8), (1, 5), (8, 1), 8, "1x8"):
        with pytest.raises(ValueError, match="block"):
            pruning.prune_magnitude(model, 0.5, block=bad)
    with pytest.raises(ValueError, match="block"):
        pruning.ConstantSparsity(0.5, block=(1, 3))
    with pytest.raises(ValueError, match="block is for method='magnitude'"):
        pruning.prune_until(model, *_data(), method="neurons", block=(1, 8))
    pruning.prune_magnitude(model, 0.7, block=[1, 8])  # a list is a block too


def test_block_masks_survive_fine_tuning_and_schedules():
    X, y = _data()
    model = _model(dtype="float32")
    model.fit(X, y, epochs=2, verbose=0)
    pruning.prune_magnitude(model, 0.75, block=(1, 8))
    zeros = [l.kernel == 0 for l in model.layers]
    model.fit(X, y, epochs=3, batch_size=16, verbose=0)
    for layer, z in zip(model.layers, zeros):
        assert np.all(layer.kernel[z] == 0) and np.any(layer.kernel[~z] != 0)
        assert _block_mask_ok(layer.kernel, 8)
    model = _model(dtype="float32")
    poly = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=30, frequency=10,
                                   block=(1, 4))
    model.fit(X, y, epochs=4, batch_size=20, callbacks=[poly], verbose=0)
    assert pruning.sparsity(model) == pytest.approx(0.8, abs=0.02)
    assert all(_block_mask_ok(l.kernel, 4) for l in model.layers)
    model = _model(dtype="float32")
    model.fit(X, y, epochs=2, batch_size=20, verbose=0,
              callbacks=[pruning.ConstantSparsity(0.5, begin_step=2, frequency=5, block=(1, 16))])
    assert all(_block_mask_ok(l.kernel, 16) for l in model.layers)


def test_prune_until_and_report_in_blocks():
    X, y = _data(400)
    model = _model(dtype="float32")
    model.fit(X[:300], y[:300], epochs=10, verbose=0)
    best, steps = pruning.prune_until(model, X[300:], y[300:], max_metric_drop=0.05,
                                      X_train=X[:300], y_train=y[:300], fine_tune_epochs=1,
                                      block=(1, 8))
    assert steps and pruning.sparsity(best) > 0.3
    assert all(_block_mask_ok(l.kernel, 8) for l in best.layers)
    rows = pruning.report(best).to_dict()["layers"]
    assert rows[0]["block"] in ("1x8", "1x16")
    assert "block" in str(pruning.report(best))
