"""fastnn.saving: the model file, written by the function or the method alike."""
import numpy as np

import fastnn as fn
from fastnn import layers as L, saving


def test_save_model_and_method_write_files_that_load_the_same(tmp_path):
    model = fn.Sequential([L.Dense(5, activation="relu"), L.Dense(2)], input_dim=3, seed=0)
    model.compile("adam", "mse")
    saving.save_model(model, tmp_path / "a.safetensors")
    model.save(tmp_path / "b.safetensors")
    assert fn.load_model is saving.load_model
    a = saving.load_model(tmp_path / "a.safetensors")
    b = fn.load_model(tmp_path / "b.safetensors")
    for x, y, w in zip(a.get_weights(), b.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(x, w)
        np.testing.assert_array_equal(y, w)
    assert a.get_config() == model.get_config()
    assert type(a.loss) is type(model.loss) and type(a.optimizer) is type(model.optimizer)
