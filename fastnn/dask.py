"""Scoring Dask collections with a fastnn network, block by block, on any Dask scheduler.

`predict` turns a dask array or dataframe into the network's outputs without any
computation: each block (or partition) is scored by the `InferenceEngine` in whichever
worker holds it. The engine travels to the workers once, as its safetensors bytes (see
`InferenceEngine.__getstate__`), and follows each worker's thread setting there: Dask
workers set ``OMP_NUM_THREADS=1`` by default, which fastnn honours.
"""
import numpy as np

from fastnn.deployment import deploy
from fastnn.engine import InferenceEngine
from fastnn.model import Sequential

__all__ = ["predict"]


def _engine_of(model_or_engine):
    if isinstance(model_or_engine, InferenceEngine):
        return model_or_engine
    if isinstance(model_or_engine, Sequential):
        return deploy(model_or_engine)
    raise TypeError(f"expected a fastnn Sequential or InferenceEngine, got "
                    f"{type(model_or_engine).__name__}")


def _predict_block(block, engine):
    return engine.predict(block)


def _predict_partition(frame, engine, columns):
    import pandas as pd

    return pd.DataFrame(engine.predict(frame.to_numpy()), index=frame.index, columns=columns)


def predict(model_or_engine, X):
    """The network's outputs for a dask array or dataframe, as a lazy Dask collection.

    Parameters
    ----------
    model_or_engine : Sequential or InferenceEngine
        A model is deployed first (`fastnn.deploy`).
    X : dask.array.Array of shape (n, n_in), or dask.dataframe.DataFrame with n_in columns
        Rows may be chunked freely; the columns are brought into one chunk.

    Returns
    -------
    dask.array.Array of shape (n, n_out) and the engine's dtype, chunked as X's rows;
    or, for a dataframe, a dask DataFrame with columns ``0 .. n_out - 1`` and X's index.
    """
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError("fastnn.dask.predict needs dask: pip install 'fastnn[dask]'") from exc
    engine = _engine_of(model_or_engine)
    shared = dask.delayed(engine, pure=True)  # one copy in the graph, not one per block
    if isinstance(X, da.Array):
        if X.ndim != 2 or X.shape[1] != engine.n_in:
            raise ValueError(f"X has shape {X.shape} but the engine expects (n, {engine.n_in})")
        X = X.rechunk({1: -1})
        return X.map_blocks(_predict_block, shared, chunks=(X.chunks[0], (engine.n_out,)),
                            dtype=engine.dtype, meta=np.empty((0, 0), dtype=engine.dtype))
    import dask.dataframe as dd
    import pandas as pd

    if not isinstance(X, dd.DataFrame):
        raise TypeError(f"X must be a dask array or dask DataFrame, got {type(X).__name__}")
    if len(X.columns) != engine.n_in:
        raise ValueError(f"X has {len(X.columns)} columns but the engine expects "
                         f"{engine.n_in}")
    columns = list(range(engine.n_out))
    meta = pd.DataFrame({c: np.empty(0, dtype=engine.dtype) for c in columns})
    return X.map_partitions(_predict_partition, shared, columns, meta=meta)
