"""Pruning: magnitude pruning with masks (unstructured or in blocks), structured removal of
hidden units, sparsity schedules for prune-and-fine-tune, a budgeted pruning loop, and a
report.

Magnitude pruning keeps a 0/1 mask per kernel (``Dense.kernel_mask``); `fit` then keeps
pruned weights at exactly zero (masked gradients, and the mask applied again after every
update). With ``block=(1, b)`` it removes whole blocks of b consecutive output units of
one input row (a kernel is stored (n_in, n_out), so a block is b consecutive entries of
one kernel row), which `fastnn.deploy` stores in a block-sparse format. Structured
pruning removes units physically and returns a smaller dense model.
Either way `fastnn.deploy` turns the result into an engine that is smaller and faster.
"""
import time

import numpy as np

from fastnn import callbacks, layers as L, losses
from fastnn._table import format_table
from fastnn._validation import check_choice, check_int, check_real
from fastnn.model import Sequential

__all__ = ["prune_magnitude", "prune_neurons", "ConstantSparsity", "PolynomialDecay",
           "prune_until", "report", "PruningReport", "sparsity", "block_structure"]

# Layers that act on each unit separately: a unit can be removed through them.
SCOPES = ("global", "layer")
"""Where `prune_magnitude` ranks the weights: over all kernels together, or per kernel."""
CRITERIA = ("l2", "activation", "redundancy")
"""How `prune_neurons` picks the units to remove."""
METHODS = ("magnitude", "neurons")
"""What `prune_until` prunes: weights or hidden units."""
BLOCKS = (None, (1, 4), (1, 8), (1, 16))
"""The block shapes of `prune_magnitude`: None (single weights) or (1, b), b consecutive
output units of one input row."""

_ELEMENTWISE = (L.BatchNormalization, L.PReLU, L.Activation, L.Dropout, L.GaussianNoise)


def _kernel_layers(model):
    return [l for l in model.layers if isinstance(l, L.Dense)]


def sparsity(model):
    """Fraction of kernel weights that are zero, over every Dense kernel."""
    kernels = [l.kernel for l in _kernel_layers(model)]
    total = sum(k.size for k in kernels)
    return 1.0 - sum(int(np.count_nonzero(k)) for k in kernels) / total if total else 0.0


def _set_mask(layer, keep):
    mask = keep.astype(layer.dtype)
    if layer.kernel_mask is not None:
        mask *= layer.kernel_mask
    layer.kernel_mask = mask
    layer.kernel *= mask


def _block_width(block):
    """The width b of a `BLOCKS` entry (1 for None); ValueError for any other block."""
    block = tuple(block) if isinstance(block, (list, np.ndarray)) else block
    check_choice(block, "block", BLOCKS)
    return 1 if block is None else block[1]


def _block_norms(kernel, width):
    """L2 norm of every block of `width` consecutive outputs of one input row, shape
    (n_in, ceil(n_out / width)): the last block of a row is partial when width does not
    divide n_out. Width 1 gives |kernel|."""
    if width == 1:
        return np.abs(kernel)
    n_in, n_out = kernel.shape
    padded = np.zeros((n_in, -(-n_out // width) * width), dtype=np.float64)
    padded[:, :n_out] = kernel
    return np.sqrt(np.square(padded).reshape(n_in, -1, width).sum(axis=2))


def _block_sizes(n_out, width):
    """Weights in each block of a kernel row (the last one may be partial)."""
    sizes = np.full(-(-n_out // width), width)
    sizes[-1] = n_out - width * (sizes.size - 1)
    return sizes


def _set_block_mask(layer, keep_blocks, width):
    _set_mask(layer, np.repeat(keep_blocks, width, axis=1)[:, :layer.kernel.shape[1]])


def _smallest(norms, sizes, count):
    """Boolean mask of the blocks of smallest norm that hold `count` weights, to the nearest
    block (exactly `count` for single weights); ties go by position."""
    flat = norms.ravel()
    drop = np.zeros(flat.size, dtype=bool)
    if count > 0:
        order = np.argsort(flat, kind="stable")
        ends = np.cumsum(sizes.ravel()[order])
        # a block goes when more than half of it lies within the first `count` weights
        drop[order[:np.searchsorted(ends - sizes.ravel()[order] / 2, count)]] = True
    return drop.reshape(norms.shape)


def prune_magnitude(model, sparsity=0.9, scope="global", threshold=None, block=None):
    """Zero the kernel weights (or blocks) of smallest magnitude and keep them zero from then on.

    Parameters
    ----------
    model : Sequential
        Pruned in place (and returned). Biases are never pruned.
    sparsity : float in [0, 1)
        Target fraction of zeros, over all kernels together (``scope="global"``) or in
        each kernel (``scope="layer"``). Weights already pruned count toward it. With
        blocks the target is met to the nearest block.
    scope : "global" or "layer"
    threshold : float, optional
        Instead of a target sparsity: prune every weight with ``|w| < threshold`` (every
        block whose L2 norm is below it).
    block : None, (1, 4), (1, 8) or (1, 16)
        None prunes single weights. ``(1, b)`` prunes whole blocks of b consecutive
        output units of one input row, ``kernel[i, j * b:(j + 1) * b]``, ranked by their
        L2 norm; when b does not divide the layer's width the last block of each row is
        its own, shorter block. `fastnn.deploy` stores such layers block-sparse.

    Returns
    -------
    model : Sequential
    """
    model.require_built("pruning")
    width = _block_width(block)
    dense = _kernel_layers(model)
    if not dense:
        raise ValueError("the model has no Dense kernels to prune")
    if threshold is not None:
        threshold = check_real(threshold, "threshold", low=0.0)
        for layer in dense:
            _set_block_mask(layer, _block_norms(layer.kernel, width) >= threshold, width)
        return model
    sparsity = check_real(sparsity, "sparsity", 0.0, 1.0, closed="left")
    check_choice(scope, "scope", SCOPES)
    norms = [_block_norms(l.kernel, width) for l in dense]
    sizes = [np.broadcast_to(_block_sizes(l.kernel.shape[1], width), n.shape)
             for l, n in zip(dense, norms)]
    if scope == "layer":
        for layer, norm, size in zip(dense, norms, sizes):
            count = int(round(sparsity * layer.kernel.size))
            _set_block_mask(layer, ~_smallest(norm, size, count), width)
    elif scope == "global":
        total = sum(l.kernel.size for l in dense)
        drop = _smallest(np.concatenate([n.ravel() for n in norms]),
                         np.concatenate([s.ravel() for s in sizes]), int(round(sparsity * total)))
        start = 0
        for layer, norm in zip(dense, norms):
            _set_block_mask(layer, ~drop[start:start + norm.size].reshape(norm.shape), width)
            start += norm.size
    return model


def block_structure(kernel):
    """The widest block (1, b) of `BLOCKS` whose blocks of `kernel` are each all zero or all
    nonzero (its zero pattern is that of a block mask), else None."""
    nonzero = np.asarray(kernel) != 0
    if nonzero.all():
        return None
    for block in BLOCKS[:0:-1]:
        width = block[1]
        count = _block_norms(nonzero.astype(np.float64), width) ** 2  # nonzeros per block
        full = np.broadcast_to(_block_sizes(nonzero.shape[1], width), count.shape)
        if np.all((np.rint(count) == 0) | (np.rint(count) == full)):
            return block
    return None


# -- structured pruning -------------------------------------------------------------------
def _unit_groups(model):
    """(i, between, j) for each Dense i whose units feed Dense j through elementwise layers."""
    groups = []
    layers = model.layers
    for i, layer in enumerate(layers):
        if not isinstance(layer, L.Dense) or isinstance(layer, L.Maxout):
            continue
        k = i + 1
        while k < len(layers) and isinstance(layers[k], _ELEMENTWISE):
            k += 1
        if k < len(layers) and isinstance(layers[k], L.Dense) and layer.units > 1:
            groups.append((i, list(range(i + 1, k)), k))
    return groups


def _activations(model, X):
    """The input of every layer on X (inference mode): a list, one array per layer."""
    inputs = []
    h = model.check_input(X)
    for layer in model.layers:
        inputs.append(h)
        h = layer.forward(h, training=False)
    return inputs


def _redundant_units(A, count):
    """Greedy merge plan: [(removed j, twin i or -1, alpha, beta)] with a_j ≈ alpha a_i + beta.

    Constant units (twin -1) go first: they are their mean. Then, repeatedly, the unit best
    explained by a remaining one (highest squared correlation) is folded into it.
    """
    A = np.asarray(A, dtype=np.float64)
    mean = A.mean(axis=0)
    centered = A - mean
    var = (centered ** 2).mean(axis=0)
    plan = []
    alive = np.ones(A.shape[1], dtype=bool)
    for j in np.flatnonzero(var <= 1e-12 * max(var.max(), 1e-30)):
        if len(plan) < count:
            plan.append((int(j), -1, 0.0, float(mean[j])))
            alive[j] = False
    cov = centered.T @ centered / A.shape[0]
    std = np.sqrt(np.maximum(var, 1e-300))
    corr2 = (cov / np.outer(std, std)) ** 2
    np.fill_diagonal(corr2, -1)
    while len(plan) < count and alive.sum() > 1:
        sub = np.where(alive[:, None] & alive[None, :], corr2, -1)
        j, i = np.unravel_index(np.argmax(sub), sub.shape)  # unit j explained by unit i
        alpha = cov[i, j] / var[i]
        plan.append((int(j), int(i), float(alpha), float(mean[j] - alpha * mean[i])))
        alive[j] = False
    return plan


def prune_neurons(model, amount=0.5, criterion="l2", X=None, compensate=None):
    """Remove hidden units physically; returns a smaller dense model (the input is kept).

    Every Dense layer whose units feed another Dense layer (through BatchNormalization,
    PReLU, Activation, Dropout or GaussianNoise) loses ``round(amount * units)`` units.
    Removing unit j drops column j of its kernel, its bias, its BatchNorm and PReLU
    entries, and row j of the next kernel.

    Parameters
    ----------
    model : Sequential
    amount : float in [0, 1)
        Fraction of each such layer's units to remove (at least one unit stays).
    criterion : "l2", "activation" or "redundancy"
        ``"l2"``: the smallest L2 norms of incoming weights go. ``"activation"``: on X, the
        smallest mean absolute activation goes first (dead ReLU units first; ties go to the
        unit inactive most often). ``"redundancy"``: on X, a unit whose activations are
        near-duplicates of another's (a_j ≈ alpha a_i + beta) is merged into its twin: its
        outgoing weights, times alpha, are added to the twin's and beta times them to the
        next bias.
    X : ndarray of shape (n, input_dim), optional
        Calibration data; required by "activation" and "redundancy".
    compensate : bool, optional
        Add each removed unit's mean activation on X times its outgoing weights to the next
        layer's bias. Defaults to True when X is given. (Redundancy merging always folds.)

    Returns
    -------
    Sequential
        A new, smaller model, compiled like the input when it was.
    """
    model.require_built("pruning")
    amount = check_real(amount, "amount", 0.0, 1.0, closed="left")
    check_choice(criterion, "criterion", CRITERIA)
    if criterion != "l2" and X is None:
        raise ValueError(f"criterion {criterion!r} needs calibration data X")
    compensate = (X is not None) if compensate is None else compensate
    if compensate and X is None:
        raise ValueError("compensation needs calibration data X")
    inputs = _activations(model, X) if X is not None else None
    weights = {i: [w.astype(np.float64) for w in layer.get_weights()]
               for i, layer in enumerate(model.layers)}
    keep = {}
    for i, between, j in _unit_groups(model):
        layer = model.layers[i]
        n_remove = min(int(round(amount * layer.units)), layer.units - 1)
        if n_remove == 0:
            continue
        A = inputs[j] if inputs is not None else None  # activations of layer i's units
        W_next, b_next = weights[j][0], weights[j][1]
        if criterion == "redundancy":
            plan = _redundant_units(A, n_remove)
            removed = [p[0] for p in plan]
            for r, twin, alpha, beta in plan:
                if twin >= 0:
                    W_next[twin] += alpha * W_next[r]
                b_next += beta * W_next[r]
        else:
            if criterion == "l2":
                order = np.argsort(np.linalg.norm(layer.kernel, axis=0), kind="stable")
            else:
                mean_abs = np.abs(A).mean(axis=0)
                inactive = (A <= 0).mean(axis=0)
                order = np.lexsort((-inactive, mean_abs))
            removed = [int(r) for r in order[:n_remove]]
            if compensate:
                b_next += A[:, removed].mean(axis=0) @ W_next[removed]
        kept = np.setdiff1d(np.arange(layer.units), removed)
        keep[i] = kept
        weights[i] = [weights[i][0][:, kept]] + [w[kept] for w in weights[i][1:]]
        for k in between:
            weights[k] = [w[kept] for w in weights[k]]
        weights[j] = [W_next[kept]] + weights[j][1:]
    configs = []
    for i, layer in enumerate(model.layers):
        config = layer.get_config()
        if i in keep:
            config["units"] = int(keep[i].size)
        configs.append(L.get({"class_name": type(layer).__name__, "config": config}))
    pruned = Sequential(configs, input_dim=model.input_dim, dtype=model.dtype, seed=model.seed,
                        name=model.name)
    pruned.set_weights([w for i in range(len(model.layers)) for w in weights[i]])
    for i, (src, dst) in enumerate(zip(model.layers, pruned.layers)):
        if getattr(src, "kernel_mask", None) is not None:
            mask = src.kernel_mask
            if i in keep:
                mask = mask[:, keep[i]]
            prev = [g for g in keep if _feeds(model, g, i)]
            for g in prev:
                mask = mask[keep[g]]
            dst.kernel_mask = np.ascontiguousarray(mask)
    pruned.classes, pruned.table = model.classes, model.table
    if model.loss is not None:
        pruned.compile_from_config(model.get_compile_config())
    return pruned


def _feeds(model, i, j):
    """True when the units of Dense layer i are the inputs of Dense layer j."""
    return any(g == (i, j) for g in ((a, c) for a, _, c in _unit_groups(model)))


# -- schedules ------------------------------------------------------------------------------
class _SparsitySchedule(callbacks.Callback):
    """Prunes by magnitude to ``target(step)`` every `frequency` optimizer steps."""

    def __init__(self, begin_step, end_step, frequency, scope, block):
        self.frequency = check_int(frequency, "frequency", low=1)
        self.begin_step = int(begin_step)
        self.end_step = end_step
        self.scope = check_choice(scope, "scope", SCOPES)
        _block_width(block)
        self.block = block

    def target(self, step):
        raise NotImplementedError

    def on_batch_end(self, batch, logs=None):
        step = self.model.optimizer.iterations
        if step < self.begin_step or (self.end_step is not None and step > self.end_step):
            return
        if (step - self.begin_step) % self.frequency == 0:
            prune_magnitude(self.model, self.target(step), scope=self.scope, block=self.block)


class ConstantSparsity(_SparsitySchedule):
    """Prune to a fixed `sparsity` from `begin_step` on, every `frequency` steps (a fit
    callback; steps are optimizer updates). `scope` and `block` are those of
    `prune_magnitude`."""

    def __init__(self, sparsity, begin_step=0, frequency=100, end_step=None, scope="global",
                 block=None):
        super().__init__(begin_step, end_step, frequency, scope, block)
        self.sparsity = check_real(sparsity, "sparsity", 0.0, 1.0, closed="left")

    def target(self, step):
        return self.sparsity


class PolynomialDecay(_SparsitySchedule):
    """Sparsity rising from `initial_sparsity` at `begin_step` to `final_sparsity` at
    `end_step` as ``final + (initial - final) * (1 - progress) ** power``, applied every
    `frequency` steps (a fit callback; steps are optimizer updates). `scope` and `block`
    are those of `prune_magnitude`."""

    def __init__(self, initial_sparsity, final_sparsity, begin_step, end_step, power=3,
                 frequency=100, scope="global", block=None):
        final_sparsity = check_real(final_sparsity, "final_sparsity", 0.0, 1.0, closed="left")
        initial_sparsity = check_real(initial_sparsity, "initial_sparsity", 0.0, final_sparsity)
        if end_step <= begin_step:
            raise ValueError("end_step must come after begin_step")
        super().__init__(begin_step, end_step, frequency, scope, block)
        self.initial_sparsity = initial_sparsity
        self.final_sparsity = final_sparsity
        self.power = power

    def target(self, step):
        progress = min(max((step - self.begin_step) / (self.end_step - self.begin_step), 0), 1)
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (
            1 - progress) ** self.power


# -- the budgeted loop -------------------------------------------------------------------------
def _score(model, X, y, metric):
    """The metric on (X, y), signed so that higher is always better (a budget on a
    lower-is-better metric such as the loss, mse, mae or rmse limits its rise)."""
    value = model.evaluate(X, y)[metric]
    return value if losses.higher_is_better(metric) else -value


def prune_until(model, X_val, y_val, max_metric_drop=0.01, *, metric=None, method="magnitude",
                step=0.2, max_sparsity=0.99, X_train=None, y_train=None, fine_tune_epochs=2,
                batch_size=32, criterion="l2", block=None, verbose=0):
    """Prune step by step while the validation metric stays within budget.

    Each round removes a further `step` of what remains (weights for
    ``method="magnitude"``, hidden units for ``method="neurons"``), fine-tunes on
    (X_train, y_train) when given, and scores on (X_val, y_val). The loop stops before the
    metric falls more than `max_metric_drop` below the unpruned model's.

    Parameters
    ----------
    model : Sequential, compiled; left unchanged
    block : None, (1, 4), (1, 8) or (1, 16)
        With ``method="magnitude"``: prune in blocks (see `prune_magnitude`).
    metric : str, optional
        A compiled metric name; defaults to the first compiled metric, else the loss. For
        the loss, mse and mae the drop is their rise.

    Returns
    -------
    best : Sequential
        The last model within budget (the unpruned copy when even the first step fails).
    steps : list of dict
        One entry per round: ``sparsity`` (weights) or ``units`` (neurons), ``metric``,
        ``within_budget``.
    """
    model.require_compiled("prune_until")
    check_choice(method, "method", METHODS)
    _block_width(block)
    if block is not None and method != "magnitude":
        raise ValueError("block is for method='magnitude'")
    step = check_real(step, "step", 0.0, 1.0, closed="neither")
    metric = metric or (model.metrics[0][0] if model.metrics else "loss")
    baseline = _score(model, X_val, y_val, metric)
    best = model.copy()
    steps = []
    density = 1.0 - sparsity(model)
    while True:
        candidate = best.copy()
        if method == "magnitude":
            density *= 1 - step
            target = 1 - density
            if target > max_sparsity:
                break
            prune_magnitude(candidate, target, block=block)
        else:
            candidate = prune_neurons(candidate, step, criterion=criterion,
                                      X=None if criterion == "l2" else X_val)
            if candidate.count_params() == best.count_params():
                break
        if X_train is not None and fine_tune_epochs:
            candidate.fit(X_train, y_train, epochs=fine_tune_epochs, batch_size=batch_size,
                          verbose=0)
        score = _score(candidate, X_val, y_val, metric)
        ok = baseline - score <= max_metric_drop
        entry = {"sparsity": sparsity(candidate), "params": candidate.count_params(),
                 "metric": score if losses.higher_is_better(metric) else -score,
                 "within_budget": ok}
        steps.append(entry)
        if verbose:
            print(f"sparsity {entry['sparsity']:.3f}  params {entry['params']}  "
                  f"{metric} {entry['metric']:.4f}  {'kept' if ok else 'over budget'}")
        if not ok:
            break
        best = candidate
    return best, steps


# -- report ------------------------------------------------------------------------------------
class PruningReport:
    """Per-layer and total size, sparsity and FLOPs of a model as deployed; printable."""

    COLUMNS = ("layer", "params", "nonzeros", "sparsity", "block", "bytes_dense",
               "bytes_deployed", "storage", "precision", "flops_dense", "flops_effective")

    def __init__(self, rows, total, extra):
        self.rows, self.total, self.extra = rows, total, extra

    def to_dict(self):
        return {"layers": self.rows, "total": self.total, **self.extra}

    def __str__(self):
        def fmt(v):
            if isinstance(v, float):
                return f"{v:.3f}"
            return str(v)
        table = [self.COLUMNS] + [tuple(fmt(r.get(c, "")) for c in self.COLUMNS)
                                  for r in self.rows + [self.total]]
        lines = [format_table(table, "r")]
        for key, value in self.extra.items():
            lines.append(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
        return "\n".join(lines)

    __repr__ = __str__


def _block_name(block):
    return "" if block is None else f"{block[0]}x{block[1]}"


def _latency_us(engine, X, batch, repeats=50):
    Xb = np.ascontiguousarray(np.resize(X, (batch, X.shape[1])))
    engine.predict(Xb)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        engine.predict(Xb)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e6)


def _deployed_bytes(entry, nnz, n_in, n_out, itemsize):
    """Bytes of a deployed Dense layer: the bias, plus the dense kernel and/or its sparse
    form: CSR (values, column indices of `index_dtype`, int64 row pointers) or blocks
    (b values and one index per block, int64 pointers per block column)."""
    total = n_out * itemsize
    if entry["precision"] in ("int8", "bf16"):
        weight_bytes = 1 if entry["precision"] == "int8" else 2
        total += n_out * 4 if weight_bytes == 1 else 0  # int8: one scale per output unit
        if "bsr" not in entry["storage"]:
            return total + n_in * n_out * weight_bytes
        itemsize = weight_bytes  # int8 in blocks: as float blocks, one byte a value
    if "dense" in entry["storage"]:
        total += n_in * n_out * itemsize
    if "csr" in entry["storage"]:
        total += nnz * (itemsize + np.dtype(entry["index_dtype"]).itemsize) + (n_out + 1) * 8
    if "bsr" in entry["storage"]:
        width = int(entry["block"][2:])
        columns = -(-n_out // width)
        blocks = int(round(entry["block_density"] * n_in * columns))
        total += blocks * (width * itemsize + np.dtype(entry["index_dtype"]).itemsize) \
            + (columns + 1) * 8
    return total


def report(model, X=None, y=None, batches=(1, 32, 256), *, precision=None, calibration=None):
    """Size, sparsity and FLOPs per layer as deployed, and with data the metric and latency.

    Columns per Dense layer: parameters, nonzeros, sparsity of the kernel, its block
    structure (``"1x8"`` when its zeros are whole 1x8 blocks, see `block_structure`; empty
    when unstructured or dense), bytes if stored dense, bytes as deployed by `fastnn.deploy` (index overhead and quantization scales
    included), the storage the engine chose, the precision of its weights, and
    multiply-add FLOPs per sample, dense (2 * n_in * n_out) and effective (2 * nonzeros).
    With X: the engine's median latency (microseconds) at each batch size; with y too:
    the model's first compiled metric (or loss) and, for a quantized engine, the engine's.
    `precision` and `calibration` are passed to `fastnn.deploy`.
    """
    from fastnn.deployment import deploy

    engine = deploy(model, precision=precision, calibration=calibration)
    deployed = [entry for entry in engine.layout() if entry["kind"] == "dense"]
    rows = []
    itemsize = model.dtype.itemsize
    for layer, entry in zip(_kernel_layers(model), deployed):
        nnz = int(np.count_nonzero(layer.kernel))
        n_in, n_out = layer.kernel.shape
        bias = 0 if layer.bias is None else layer.bias.size
        rows.append({
            "layer": layer.name, "params": layer.kernel.size + bias,
            "nonzeros": nnz + (0 if layer.bias is None else int(np.count_nonzero(layer.bias))),
            "sparsity": 1 - nnz / layer.kernel.size,
            "block": _block_name(block_structure(layer.kernel)),
            "bytes_dense": (layer.kernel.size + bias) * itemsize,
            "bytes_deployed": _deployed_bytes(entry, nnz, n_in, n_out, itemsize),
            "storage": entry["storage"], "precision": entry["precision"],
            "flops_dense": 2 * n_in * n_out, "flops_effective": 2 * nnz,
        })
    total = {"layer": "total"}
    for key in ("params", "nonzeros", "bytes_dense", "bytes_deployed", "flops_dense",
                "flops_effective"):
        total[key] = sum(r[key] for r in rows)
    kernel_sizes = sum(l.kernel.size for l in _kernel_layers(model))
    total["sparsity"] = sparsity(model) if kernel_sizes else 0.0
    total["storage"] = total["precision"] = total["block"] = ""
    extra = {}
    if X is not None:
        X = model.check_input(X)
        if y is not None and model.loss is not None:
            result = model.evaluate(X, y)
            name = model.metrics[0][0] if model.metrics else "loss"
            extra[name] = result[name]
            if precision is not None:
                from fastnn.quantization import evaluate
                extra[f"engine_{name}"] = evaluate(model, engine, X, y)["engine"]
        for b in batches:
            extra[f"latency_us_batch_{b}"] = _latency_us(engine, X, b)
    return PruningReport(rows, total, extra)
