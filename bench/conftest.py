import sys

import pytest


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    """Leave torch's thread count as each module found it (peers set it per contender)."""
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch else None
    yield
    if previous is not None:
        torch.set_num_threads(previous)


# Order within an engine group: ONNX Runtime's worker threads keep spinning for a
# while after a run, so the scipy chain (one thread) follows it, not a fastnn entry.
_ENGINE_ORDER = ("fastnn_auto", "fastnn_dense", "torch", "onnxruntime", "scipy_sparse")


def _engine_key(item):
    kind = next(i for i, name in enumerate(_ENGINE_ORDER) if name in item.name)
    params = item.callspec.params
    return params["sparsity"], params["batch"], kind, params.get("threads", 0)


def _interop_key(item):
    return item.callspec.params["batch"], item.name


def _quant_key(item):  # benchmarks by batch size, then the accuracy tests
    batch = item.callspec.params.get("batch") if hasattr(item, "callspec") else None
    return (0, batch) if batch is not None else (1, 0)


def pytest_collection_modifyitems(items):
    """Run the contenders of one engine (or interop) benchmark group back to back.

    Ratios are read within a group; measured minutes apart (test function by test
    function), they would also carry whatever the machine did in between.
    """
    for module, key in (("bench_engine", _engine_key), ("bench_interop", _interop_key),
                        ("bench_quant", _quant_key)):
        chosen = [i for i, item in enumerate(items) if item.module.__name__.endswith(module)]
        for i, item in zip(chosen, sorted((items[i] for i in chosen), key=key)):
            items[i] = item
