"""fastnn.diagnostics: the gradient report as a function of the model."""
import numpy as np

import fastnn as fn
from fastnn import diagnostics, layers as L


def test_gradient_report_function_and_method_give_the_same_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, 40)

    def model():
        m = fn.Sequential([L.Dense(8, activation="tanh"), L.Dense(3, activation="softmax")],
                          input_dim=4, seed=1)
        m.compile("sgd", "sparse_categorical_crossentropy")
        return m

    by_function = diagnostics.gradient_report(model(), X, y)
    by_method = model().gradient_report(X, y)
    assert isinstance(by_method, diagnostics.GradientReport)
    assert by_function.to_dict() == by_method.to_dict()
    assert [r["layer"] for r in by_function.rows] == ["dense", "dense_1"]
    assert all(r["grad_norm"] > 0 for r in by_function.rows)


def test_gradient_report_keeps_the_optimizers_undo_step():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 3, 64)

    def trained():
        model = fn.Sequential([L.Dense(8, activation="relu"), L.BatchNormalization(),
                               L.Dense(3, activation="softmax")], input_dim=4, seed=9)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(X, y, epochs=1, batch_size=16, verbose=0)
        return model

    plain, reported = trained(), trained()
    diagnostics.gradient_report(reported, X, y)
    # fit takes back the last step when the next loss is not finite: the report between
    # the two must leave that possible, and the weights (running statistics too) alone
    for a, b in zip(reported.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert plain.optimizer.undo() and reported.optimizer.undo()
    assert reported.optimizer.iterations == plain.optimizer.iterations == 3
    for a, b in zip(reported.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(reported.optimizer.get_state(), plain.optimizer.get_state()):
        np.testing.assert_array_equal(a, b)
