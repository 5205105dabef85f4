"""Models in and out: ONNX import and export, PyTorch and scikit-learn import.

Graphs in the tf2onnx style (MatMul + Add, Gemm) are built here with onnx.helper, the
way tf2onnx writes Keras Dense stacks, because TensorFlow is not a test dependency.
"""
import io
import warnings

import numpy as np
import pytest

import fastnn as fn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _close(got, want, rtol):
    """Within `rtol` relative to the output's scale."""
    want = np.asarray(want, dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()))


def _ort(proto, X, outputs=None):
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(outputs, {session.get_inputs()[0].name: X})


# -- PyTorch --------------------------------------------------------------------------------

def _torch_activations(nn, width):
    return {
        "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.3), "prelu1": nn.PReLU(),
        "prelu": nn.PReLU(width), "elu": nn.ELU(0.7), "selu": nn.SELU(), "gelu": nn.GELU(),
        "gelu_tanh": nn.GELU(approximate="tanh"), "silu": nn.SiLU(), "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(), "softplus": nn.Softplus(),
    }


ACTS = ["relu", "leaky_relu", "prelu1", "prelu", "elu", "selu", "gelu", "gelu_tanh", "silu",
        "sigmoid", "tanh", "softplus"]


def _torch_net(torch, acts, batchnorm, dtype, seed, last="softmax"):
    """A random Sequential: widths in 1..300, one hidden layer per activation in `acts`."""
    nn = torch.nn
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    widths = [int(w) for w in rng.integers(1, 301, size=len(acts) + 2)]
    widths[-1] = max(widths[-1] % 12, 2)
    modules = []
    for k, act in enumerate(acts):
        modules.append(nn.Linear(widths[k], widths[k + 1]))
        if batchnorm:
            bn = nn.BatchNorm1d(widths[k + 1])
            with torch.no_grad():
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.5, 0.5)
            modules.append(bn)
        modules.append(_torch_activations(nn, widths[k + 1])[act])
        if k == 0:
            modules.append(nn.Dropout(0.2))
    modules.append(nn.Linear(widths[-2], widths[-1]))
    if last == "softmax":
        modules.append(nn.Softmax(dim=-1))
    net = nn.Sequential(*modules).eval()
    return net.double() if dtype == np.float64 else net, widths[0]


def _export(torch, net, X, dynamo, opset=None):
    x = torch.from_numpy(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            pytest.importorskip("onnxscript")
            program = torch.onnx.export(net, (x,), dynamo=True, opset_version=opset,
                                        input_names=["input"], verbose=False,
                                        dynamic_shapes={"input": {0: "batch"}})
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=opset or 17,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}})
        return buffer.getvalue()


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("act", ACTS)
def test_from_torch_every_activation(act, batchnorm, dtype):
    torch = pytest.importorskip("torch")
    seed = ACTS.index(act) + 100 * batchnorm
    net, n_in = _torch_net(torch, [act, act], batchnorm, dtype, seed)
    X = np.random.default_rng(seed).normal(size=(9, n_in)).astype(dtype)
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()
    model = fn.from_torch(net)
    assert model.dtype == dtype and model.input_dim == n_in
    _close(model.predict(X), want, 1e-5)
    _close(fn.deploy(model).predict(X), want, 1e-5)


@pytest.mark.parametrize("dynamo,opset", [(False, 11), (False, 17), (True, 18), (True, 20)])
def test_from_onnx_of_torch_exports(dynamo, opset, dtype):
    """Both exporters, every activation in one network: opset 18 spells GELU with Erf and
    Tanh, SiLU as x * sigmoid(x) and Softplus with a Where guard; opset 20 has Gelu."""
    torch = pytest.importorskip("torch")
    if dynamo and dtype == np.float64:
        pytest.skip("one dtype is enough for the slow dynamo exporter")
    for batchnorm in (False, True):
        net, n_in = _torch_net(torch, ACTS, batchnorm, dtype, seed=7 + opset + batchnorm)
        X = np.random.default_rng(opset).normal(size=(6, n_in)).astype(dtype)
        with torch.no_grad():
            want = net(torch.from_numpy(X)).numpy()
        model = fn.from_onnx(_export(torch, net, X, dynamo, opset))
        assert model.dtype == dtype
        _close(model.predict(X), want, 1e-5)


def test_from_torch_state_dict_and_nested():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(5, 8), nn.Tanh()), nn.Identity(),
                        nn.Linear(8, 3), nn.Softmax(dim=1)).eval()
    X = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    want = net(torch.from_numpy(X)).detach().numpy()
    _close(fn.from_torch(net).predict(X), want, 1e-6)
    model = fn.from_torch(net.state_dict(), sizes=[5, 8, 3], activations=["tanh", "softmax"])
    _close(model.predict(X), want, 1e-6)
    with pytest.raises(ValueError, match="sizes"):
        fn.from_torch(net.state_dict(), sizes=[5, 9, 3], activations=["tanh", "softmax"])
    with pytest.raises(ValueError, match="input_dim=4"):
        fn.from_torch(net, input_dim=4)


def test_from_torch_keeps_dropout_for_fine_tuning():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = fn.from_torch(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.25),
                                        nn.Linear(4, 1)))
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dropout", "Dense"]
    assert model.layers[1].rate == 0.25 and model.layers[0].activation.kernel == "relu"
    bn = fn.from_torch(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, eps=1e-3, momentum=0.3)))
    assert (bn.layers[1].eps, bn.layers[1].momentum) == (1e-3, 0.3)


@pytest.mark.parametrize("module,match", [
    ("nn.Softplus(beta=2)", "beta=2"),
    ("nn.Softmax(dim=0)", "dim=0"),
    ("nn.LogSoftmax(dim=1)", "log-softmax"),
    ("nn.Conv1d(1, 1, 1)", "Conv1d.*supported: BatchNorm1d"),
    ("nn.Flatten(0)", "start_dim=0"),
    ("nn.BatchNorm1d(4, track_running_stats=False)", "running statistics"),
])
def test_from_torch_refuses_what_it_would_change(module, match):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nn.Sequential(nn.Linear(3, 4), eval(module))
    with pytest.raises(ValueError, match=match):
        fn.from_torch(net)


def test_to_torch_same_outputs(dtype):
    torch = pytest.importorskip("torch")
    model = fn.Sequential([fn.layers.Dense(7, activation="gelu"), fn.layers.BatchNormalization(),
                           fn.layers.PReLU(), fn.layers.Dropout(0.1),
                           fn.layers.Dense(5, activation=fn.activations.LeakyReLU(0.2)),
                           fn.layers.Activation("swish"), fn.layers.Dense(3, activation="softmax")],
                          input_dim=4, dtype=dtype, seed=0)
    model.layers[1].running_mean[:] = np.linspace(-1, 1, 7)
    X = np.random.default_rng(1).normal(size=(6, 4)).astype(dtype)
    net = fn.to_torch(model)
    with torch.no_grad():
        got = net(torch.from_numpy(X)).numpy()
    assert got.dtype == dtype
    _close(got, model.predict(X), 1e-6 if dtype == np.float32 else 1e-12)
    back = fn.from_torch(net)
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- scikit-learn ---------------------------------------------------------------------------

def _sklearn_cases():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6))
    return X, {
        "binary-strings": (np.array(["no", "yes"])[(X[:, 0] > 0).astype(int)], "relu"),
        "multiclass-ints": (np.array([3, 5, 9])[rng.integers(0, 3, 80)], "tanh"),
        "multiclass-logistic": (rng.integers(0, 4, 80), "logistic"),
    }


@pytest.mark.parametrize("case", ["binary-strings", "multiclass-ints", "multiclass-logistic"])
def test_from_sklearn_classifier(case):
    nn = pytest.importorskip("sklearn.neural_network")
    X, cases = _sklearn_cases()
    y, act = cases[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nn.MLPClassifier(hidden_layer_sizes=(17, 9), activation=act, max_iter=60,
                               random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    model = fn.from_sklearn(clf)
    out = model.predict(X)
    if proba.shape[1] == 2:
        assert out.shape == (80, 1)
        out = np.hstack([1 - out, out])
    _close(out, proba, 1e-6)
    assert model.classes.tolist() == clf.classes_.tolist()
    np.testing.assert_array_equal(model.predict_classes(X), clf.predict(X))

    skl2onnx = pytest.importorskip("skl2onnx")
    X32 = X.astype(np.float32)
    for options in (None, {"zipmap": False}):
        proto = skl2onnx.to_onnx(clf, X32[:1], options=options and {id(clf): options})
        imported = fn.from_onnx(proto)
        assert np.asarray(imported.classes).tolist() == clf.classes_.tolist()
        got = imported.predict(X32)
        if got.shape[1] == 1:
            got = np.hstack([1 - got, got])
        _close(got, clf.predict_proba(X32), 1e-6)


def test_from_sklearn_regressor():
    nn = pytest.importorskip("sklearn.neural_network")
    X, _ = _sklearn_cases()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = nn.MLPRegressor(hidden_layer_sizes=(12,), activation="relu", max_iter=50,
                              random_state=0).fit(
            X, X[:, :2] @ [[1.0, 0.5], [-1.0, 2.0]])
    model = fn.from_sklearn(reg)
    assert model.dtype == np.float64 and model.classes is None
    _close(model.predict(X), reg.predict(X), 1e-12)
    # skl2onnx reshapes a regressor's output to (-1, 1), which keeps one output per row only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, X[:, 0] - X[:, 1])
    skl2onnx = pytest.importorskip("skl2onnx")
    X32 = X.astype(np.float32)
    got = fn.from_onnx(skl2onnx.to_onnx(reg, X32[:1])).predict(X32)
    _close(got[:, 0], reg.predict(X32), 1e-6)


# -- tf2onnx-style graphs, built by hand --------------------------------------------------

def _tf_style_graph(gemm, rng):
    """A Keras Dense stack as tf2onnx writes it: MatMul + Add (or Gemm), Identity, Softmax."""
    W1, b1 = rng.normal(size=(5, 7)).astype(np.float32), rng.normal(size=7).astype(np.float32)
    W2, b2 = rng.normal(size=(7, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((W1, "dense/MatMul/ReadVariableOp:0"), (b1, "dense/BiasAdd/ReadVariableOp:0"),
              (W2.T.copy(), "dense_1/kernel_t"), (b2, "dense_1/BiasAdd/ReadVariableOp:0"))]
    if gemm:
        nodes = [helper.make_node("Gemm", ["dense_input", "dense/MatMul/ReadVariableOp:0",
                                           "dense/BiasAdd/ReadVariableOp:0"], ["h"],
                                  name="dense/BiasAdd")]
    else:
        nodes = [helper.make_node("MatMul", ["dense_input", "dense/MatMul/ReadVariableOp:0"],
                                  ["m"], name="dense/MatMul"),
                 helper.make_node("Add", ["m", "dense/BiasAdd/ReadVariableOp:0"], ["h"],
                                  name="dense/BiasAdd")]
    nodes += [helper.make_node("Relu", ["h"], ["r"], name="dense/Relu"),
              helper.make_node("Transpose", ["dense_1/kernel_t"], ["k"], name="t", perm=[1, 0]),
              helper.make_node("MatMul", ["r", "k"], ["m1"], name="dense_1/MatMul"),
              helper.make_node("Add", ["dense_1/BiasAdd/ReadVariableOp:0", "m1"], ["z"],
                               name="dense_1/BiasAdd"),
              helper.make_node("Softmax", ["z"], ["s"], name="dense_1/Softmax"),
              helper.make_node("Identity", ["s"], ["dense_1"], name="Identity")]
    graph = helper.make_graph(
        nodes, "tf2onnx", [helper.make_tensor_value_info("dense_input", TensorProto.FLOAT,
                                                         ["unk__6", 5])],
        [helper.make_tensor_value_info("dense_1", TensorProto.FLOAT, ["unk__7", 3])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])

    def reference(X):
        z = np.maximum(X @ W1 + b1, 0) @ W2 + b2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return proto, reference


@pytest.mark.parametrize("gemm", [False, True], ids=["matmul-add", "gemm"])
def test_from_onnx_tf2onnx_style(gemm):
    rng = np.random.default_rng(3)
    proto, reference = _tf_style_graph(gemm, rng)
    X = rng.normal(size=(8, 5)).astype(np.float32)
    model = fn.from_onnx(proto.SerializeToString())
    assert [layer.activation.kernel for layer in model.layers] == ["relu", "softmax"]
    _close(model.predict(X), reference(X), 1e-5)


# -- unsupported and malformed graphs --------------------------------------------------------

def _graph(nodes, inits, inputs=(("x", [None, 4]),), out_width=3, opset=17):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT,
                                       [None, out_width])],
        [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


W43 = {"W": np.ones((4, 3)), "b": np.zeros(3)}


@pytest.mark.parametrize("case,match", [
    ("conv", r"'c' \(Conv\) is not supported; supported: .*Gemm"),
    ("weight-input", r"weight 'W' is not a constant"),
    ("branch", r"feeds 2 nodes"),
    ("batch-last", r"transA=1"),
    ("rank3", r"3 axes"),
    ("logsoftmax", r"log-softmax"),
    ("softmax-axis0", r"axis=0"),
    ("scaled", r"'s' \(Mul\) is not supported"),
    ("not-gelu", r"feeds 2 nodes"),
    ("output-then-more", r"'e' \(Erf\) is not supported"),
])
def test_from_onnx_unsupported(case, match):
    gemm = helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="g")
    if case == "conv":
        proto = _graph([helper.make_node("Conv", ["x", "W"], ["h"], name="c")],
                       {"W": np.ones((3, 1, 1))}, inputs=(("x", [None, 1, 4]),))
        match = r"3 axes"
    elif case == "weight-input":
        proto = _graph([helper.make_node("MatMul", ["x", "W"], ["h"], name="m")], {},
                       inputs=(("x", [None, 4]), ("W", [4, 3])))
    elif case == "branch":
        proto = _graph([gemm, helper.make_node("Gemm", ["x", "W", "b"], ["h2"], name="g2"),
                        helper.make_node("Add", ["h", "h2"], ["y"], name="a")], W43)
    elif case == "batch-last":
        proto = _graph([helper.make_node("Gemm", ["x", "W"], ["h"], name="g", transA=1)],
                       {"W": np.ones((5, 3))}, inputs=(("x", [5, None]),))
    elif case == "rank3":
        proto = _graph([gemm], W43, inputs=(("x", [None, 2, 4]),))
    elif case == "logsoftmax":
        proto = _graph([gemm, helper.make_node("LogSoftmax", ["h"], ["y"], name="l")], W43)
    elif case == "softmax-axis0":
        proto = _graph([gemm, helper.make_node("Softmax", ["h"], ["y"], name="s", axis=0)], W43)
    elif case == "scaled":
        proto = _graph([gemm, helper.make_node("Mul", ["h", "two"], ["y"], name="s")],
                       dict(W43, two=np.float32(2.0)))
    elif case == "output-then-more":  # an output in the middle does not end the network
        proto = _graph([gemm, helper.make_node("Erf", ["h"], ["y"], name="e")], W43)
        proto.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT,
                                                                [None, 3]))
    else:  # x * tanh(x) looks like SiLU but is not
        proto = _graph([gemm, helper.make_node("Tanh", ["h"], ["t"], name="t"),
                        helper.make_node("Mul", ["h", "t"], ["y"], name="m")], W43)
    with pytest.raises(ValueError, match=match):
        fn.from_onnx(proto)


def test_from_onnx_malformed(tmp_path):
    proto = _graph([helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="g")], W43)
    data = proto.SerializeToString()
    for bad in (b"not an onnx file", data[: len(data) // 2]):
        with pytest.raises(fn.ModelFormatError):
            fn.from_onnx(bad)
    path = tmp_path / "bad.onnx"
    path.write_bytes(data[:-7])
    with pytest.raises(fn.ModelFormatError):
        fn.from_onnx(path)
    # a node that names a value nothing produces fails the checker
    broken = _graph([helper.make_node("Gemm", ["x", "W", "missing"], ["h"], name="g")], W43)
    with pytest.raises(fn.ModelFormatError):
        fn.from_onnx(broken)
    nan = _graph([helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="g")],
                 {"W": np.full((4, 3), np.nan), "b": np.zeros(3)})
    with pytest.raises(fn.ModelFormatError, match="NaN"):
        fn.from_onnx(nan)
    with pytest.raises(FileNotFoundError):
        fn.from_onnx(tmp_path / "missing.onnx")


# -- export ---------------------------------------------------------------------------------

def _model(dtype, seed=0, acts=("relu", "gelu", "gelu_tanh", "swish", "softplus", "selu"),
           widths=(40, 30)):
    layers = []
    for k, act in enumerate(acts):
        layers.append(fn.layers.Dense(widths[k % 2], activation=act))
        if k == 1:
            layers += [fn.layers.BatchNormalization(), fn.layers.Dropout(0.2)]
        if k == 2:
            layers.append(fn.layers.PReLU())
    layers += [fn.layers.Dense(8, activation=fn.activations.ELU(0.5)),
               fn.layers.Activation(fn.activations.LeakyReLU(0.1)),
               fn.layers.Dense(4, activation="softmax")]
    mean, variance = np.linspace(-1, 1, 12), np.linspace(0.1, 2, 12)
    model = fn.Sequential([fn.layers.Normalization(mean=mean, variance=variance)] + layers,
                          input_dim=12, dtype=dtype, seed=seed)
    bn = model.layers[3]
    bn.running_mean[:] = np.linspace(-0.3, 0.3, bn.input_dim)
    bn.running_var[:] = np.linspace(0.5, 1.5, bn.input_dim)
    return model


@pytest.mark.parametrize("opset,matmul", [(13, False), (17, True), (20, False)])
def test_to_onnx_runs_in_onnxruntime_and_reads_back(opset, matmul, dtype, tmp_path):
    model = _model(dtype)
    X = np.random.default_rng(0).normal(size=(10, 12)).astype(dtype)
    path = tmp_path / "model.onnx"
    proto = fn.to_onnx(model, path, opset=opset, matmul=matmul)
    onnx.checker.check_model(proto)
    assert path.read_bytes() == proto.SerializeToString()
    ops = {n.op_type for n in proto.graph.node}
    assert ("MatMul" in ops) == matmul and ("Gemm" in ops) == (not matmul)
    assert ("Gelu" in ops) == (opset >= 20)
    if dtype == np.float32:  # ONNX Runtime has no float64 kernels for several activations
        _close(_ort(proto, X)[0], model.predict(X), 1e-5)
    back = fn.from_onnx(path)
    assert [type(a) for a in back.layers] == [type(a) for a in model.layers]
    assert [getattr(a, "activation", None) for a in back.layers] == \
        [getattr(a, "activation", None) for a in model.layers]
    for a, b in zip(back.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    _close(back.predict(X), model.predict(X), 1e-6 if dtype == np.float32 else 1e-12)


def test_to_onnx_float64_runs_in_onnxruntime():
    """Also a Normalization with a constant feature, which it only centres."""
    norm = fn.layers.Normalization(mean=np.arange(6.0), variance=[0, 1, 2, 3, 4, 5])
    model = fn.Sequential([norm,
                           fn.layers.Dense(9, activation="tanh"),
                           fn.layers.Dense(5, activation="relu"),
                           fn.layers.Dense(3, activation="softmax")], input_dim=6,
                          dtype="float64", seed=1)
    X = np.random.default_rng(1).normal(size=(7, 6))
    proto = fn.to_onnx(model)
    _close(_ort(proto, X)[0], model.predict(X), 1e-12)
    _close(fn.from_onnx(proto).predict(X), model.predict(X), 1e-12)


def test_to_onnx_sparse_file_shrinks_with_the_nonzeros(tmp_path):
    model = fn.Sequential([fn.layers.Dense(256, activation="relu"),
                           fn.layers.Dense(128, activation="relu"),
                           fn.layers.Dense(10, activation="softmax")], input_dim=784, seed=0)
    fn.pruning.prune_magnitude(model, sparsity=0.9)
    dense, sparse = tmp_path / "dense.onnx", tmp_path / "sparse.onnx"
    fn.to_onnx(model, dense)
    proto = fn.to_onnx(model, sparse, sparse=True)
    assert len(proto.graph.sparse_initializer) >= 1
    ratio = sparse.stat().st_size / dense.stat().st_size
    assert ratio < 0.35, ratio
    X = np.random.default_rng(0).random((5, 784)).astype(np.float32)
    _close(_ort(proto, X)[0], model.predict(X), 1e-5)
    back = fn.from_onnx(sparse)
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_to_onnx_matmul_is_quantized_by_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    model = _model(np.float32)
    n_dense = sum(isinstance(layer, fn.layers.Dense) for layer in model.layers)
    fn.to_onnx(model, tmp_path / "m.onnx", matmul=True)
    quantize_dynamic(tmp_path / "m.onnx", tmp_path / "q.onnx", weight_type=QuantType.QInt8)
    quantized = onnx.load(tmp_path / "q.onnx")
    ops = [n.op_type for n in quantized.graph.node]
    assert "MatMul" not in ops
    assert ops.count("MatMulInteger") + ops.count("DynamicQuantizeMatMul") == n_dense
    X = np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32)
    assert np.abs(_ort(quantized, X)[0] - model.predict(X)).max() < 0.1


def test_to_onnx_of_a_pruned_engine(tmp_path):
    model = _model(np.float32, seed=3)
    fn.pruning.prune_magnitude(model, sparsity=0.8)
    engine = fn.deploy(model)
    X = np.random.default_rng(2).normal(size=(6, 12)).astype(np.float32)
    proto = fn.to_onnx(engine, sparse=True)
    onnx.checker.check_model(proto)
    _close(_ort(proto, X)[0], engine.predict(X), 1e-5)
    _close(fn.from_onnx(proto).predict(X), engine.predict(X), 1e-5)


def test_to_onnx_maxout_and_binary_step_run_in_onnxruntime():
    model = fn.Sequential([fn.layers.Maxout(6, pieces=3), fn.layers.Activation("binary_step"),
                           fn.layers.Dense(2)], input_dim=5, seed=0)
    X = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    for opset in (17, 18):
        _close(_ort(fn.to_onnx(model, opset=opset), X)[0], model.predict(X), 1e-5)


def test_to_onnx_refuses_bad_arguments():
    model = _model(np.float32)
    with pytest.raises(ValueError, match="opset"):
        fn.to_onnx(model, opset=9)
    with pytest.raises(TypeError):
        fn.to_onnx("model.safetensors")
    with pytest.raises(RuntimeError, match="not built"):
        fn.to_onnx(fn.Sequential([fn.layers.Dense(2)]))


@pytest.mark.parametrize("classes", [["cat", "dog", "eel"], [3, 5, 9], ["no", "yes"]])
def test_class_labels_survive_onnx_files_and_deploy(classes, tmp_path):
    n_out = 1 if len(classes) == 2 else len(classes)
    model = fn.Sequential([fn.layers.Dense(6, activation="relu"),
                           fn.layers.Dense(n_out, activation="sigmoid" if n_out == 1
                                           else "softmax")], input_dim=4, seed=0)
    model.classes = classes
    X = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    proto = fn.to_onnx(model)
    probabilities, labels = _ort(proto, X)
    _close(probabilities, model.predict(X), 1e-5)
    assert labels.tolist() == model.predict_classes(X).tolist()
    back = fn.from_onnx(proto)
    assert back.classes.tolist() == list(classes)
    back.save(tmp_path / "m.safetensors")
    assert fn.load_model(tmp_path / "m.safetensors").classes.tolist() == list(classes)
    assert fn.deploy(back).predict_classes(X).tolist() == model.predict_classes(X).tolist()


def test_missing_packages_name_what_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"fastnn\[onnx\]"):
        fn.from_onnx(b"")
    with pytest.raises(ImportError, match=r"fastnn\[onnx\]"):
        fn.to_onnx(_model(np.float32))
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="torch"):
        fn.from_torch(None)
    monkeypatch.setitem(sys.modules, "sklearn.neural_network", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        fn.from_sklearn(None)


def test_from_sklearn_multilabel_keeps_sigmoid_outputs():
    nn = pytest.importorskip("sklearn.neural_network")
    X, _ = _sklearn_cases()
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0]).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nn.MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, Y)
    model = fn.from_sklearn(clf)
    assert model.classes is None and model.layers[-1].activation.kernel == "sigmoid"
    _close(model.predict(X), clf.predict_proba(X), 1e-12)
    with pytest.raises(TypeError, match="MLPClassifier or MLPRegressor"):
        fn.from_sklearn(object())
    with pytest.raises(ValueError, match="not fitted"):
        fn.from_sklearn(nn.MLPRegressor())
