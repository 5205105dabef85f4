"""Seed inputs of the fuzz targets, made on the fly: valid model, engine and data files."""
import io as _bytes_io
import os
import tempfile

import numpy as np

import fastnn
import fastnn.saving
from fastnn import layers as L


def _file_bytes(obj, name="seed"):
    """The bytes `obj.save` writes (a model or an engine)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        obj.save(path)
        with open(path, "rb") as f:
            return f.read()


def _models():
    dense = fastnn.Sequential([L.Normalization(mean=0.5, variance=2.0),
                               L.Dense(8, activation="relu"), L.BatchNormalization(),
                               L.Dense(6, activation=fastnn.activations.LeakyReLU(0.2)),
                               L.Dropout(0.1), L.PReLU(), L.Maxout(3, pieces=2),
                               L.Dense(3, activation="softmax")], input_dim=5, seed=0)
    dense.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], clipnorm=1.0)
    small = fastnn.Sequential([L.Dense(4, activation="elu"), L.GaussianNoise(0.1),
                               L.Activation("tanh"), L.Dense(1, activation="sigmoid")],
                              input_dim=3, dtype="float64", seed=1)
    small.classes = ["no", "yes"]
    pruned = fastnn.Sequential([L.Dense(16, activation="gelu"),
                                L.Dense(4, activation="linear")], input_dim=12, seed=2)
    fastnn.pruning.prune_magnitude(pruned, sparsity=0.8)
    pruned.compile("sgd", "mse")
    return {"model-dense": dense, "model-small64": small, "model-pruned": pruned}


def model_seeds():
    """name -> bytes of model files (dense, float64, pruned with CSR kernels and masks, and
    a trained one with its optimizer state)."""
    models = _models()
    seeds = {name: _file_bytes(m) for name, m in models.items()}
    trained = models["model-dense"]
    rng = np.random.default_rng(0)
    trained.fit(rng.standard_normal((8, 5)), rng.integers(0, 3, 8), batch_size=4, verbose=0)
    seeds["model-trained"] = fastnn.saving.model_to_bytes(trained, include_optimizer=True)
    return seeds


def engine_seeds():
    """name -> bytes of engine files, in every dtype and layout."""
    seeds = {}
    for name, model in _models().items():
        for dtype in ("float32", "float64"):
            for layout in ("dense", "sparse", "auto"):
                engine = fastnn.deploy(model, layout=layout) if dtype == model.dtype.name \
                    else _engine_in(model, dtype, layout)
                seeds[f"engine-{name[6:]}-{dtype}-{layout}"] = _file_bytes(engine)
    return seeds


def _engine_in(model, dtype, layout):
    engine = fastnn.deploy(model, layout=layout)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "e.fastnn")
        engine.save(path)
        raw = fastnn.io.load_tensors(path)
    # the same network in the other dtype: convert every float tensor and the metadata
    tensors, meta = raw
    tensors = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in tensors.items()}
    meta = dict(meta, dtype=dtype)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "e.fastnn")
        fastnn.io.save_tensors(path, tensors, meta)
        return fastnn.load_engine(path)


def data_seeds():
    """name -> bytes of CSV and npz data files the command line reads."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    y = np.array([0, 1, 2, 0, 1, 2])
    csv = "a,b,c,label\n" + "".join(f"{r[0]:.3f},{r[1]:.3f},{r[2]:.3f},{t}\n"
                                    for r, t in zip(X, y))
    npz = _bytes_io.BytesIO()
    np.savez(npz, X=X, y=y)
    packed = _bytes_io.BytesIO()
    np.savez_compressed(packed, X=X.astype(np.float32), y=y)
    return {"data-csv": csv.encode(), "data-npz": npz.getvalue(),
            "data-npz-compressed": packed.getvalue()}
