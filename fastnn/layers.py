"""Layers: Dense, Activation, Dropout, BatchNormalization, Normalization, PReLU, Maxout,
GaussianNoise.

A layer is built once for an input width, a dtype and a random generator. In training
its ``forward`` keeps only what ``backward`` needs; ``backward`` fills the gradients
aligned with ``params`` and returns the gradient for the layer below. Outputs and
gradients live in buffers that are made once per batch shape and then reused.

The model checks its inputs once, at its public boundary; a layer then receives
C-contiguous 2-D arrays of its dtype and calls the kernels' unchecked ``*_into`` entry
points, with the activation code and slope array it resolved when it was built.
"""
import numpy as np

from fastnn import activations, constraints, initializers, regularizers
from fastnn._kernels import activations as act_kernels
from fastnn._kernels import dense as dense_kernels
from fastnn._kernels._checks import as_input
from fastnn._kernels._memory import aligned_copy, aligned_full
from fastnn._validation import check_int, check_real
from fastnn._kernels._threads import get_num_threads

__all__ = ["Layer", "Dense", "Activation", "Dropout", "BatchNormalization", "Normalization",
           "PReLU", "Maxout", "GaussianNoise", "get", "LAYERS"]

LINEAR = act_kernels.activation_code("linear")
PRELU = act_kernels.activation_code("prelu")


class Layer:
    """Base class.

    Subclasses set ``params`` (trainable arrays, Keras order first), ``grads`` (arrays
    aligned with ``params``) and ``weights`` (everything `get_weights` returns, including
    non-trainable state such as running statistics) in `build`.
    """

    def __init__(self, name=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"a layer name must be a string, got {name!r}")
        self.name = name
        self.built = False
        self.input_dim = None
        self.output_dim = None
        self.dtype = None
        self.params = []
        self.grads = []
        self._buffers = {}
        self._given = None

    # -- construction ------------------------------------------------------
    def build(self, input_dim, dtype, rng, weights=None):
        """Make the weights for inputs of width `input_dim`; returns the output width.

        With `weights` (arrays, or objects with ``shape`` that convert to arrays, in the
        order of `weights`), the layer takes copies of them instead of running its
        initializers; each shape is checked before anything of that size is made, and
        ValueError is raised when a shape or the number of arrays differs.
        """
        self.input_dim = int(input_dim)
        self.dtype = np.dtype(dtype)
        self._given = None if weights is None else list(weights)[::-1]
        try:
            self.output_dim = self._build(rng)
            if self._given:
                raise ValueError(f"layer {self.name!r} takes {len(self.weights)} arrays, got "
                                 f"{len(self.weights) + len(self._given)}")
        finally:
            self._given = None
        self.built = True
        return self.output_dim

    def _weight(self, shape, initializer, rng):
        """A new weight of `shape`: the next given array (see `build`) or an initial one.

        `initializer` is called as ``initializer(shape, dtype, rng)``.
        """
        if self._given is None:
            return aligned_copy(initializer(shape, self.dtype, rng), self.dtype)
        if not self._given:
            raise ValueError(f"layer {self.name!r} takes more arrays than were given")
        value = self._given.pop()
        if tuple(value.shape) != tuple(shape):
            raise ValueError(f"layer {self.name!r}: weight of shape {tuple(shape)} cannot take "
                             f"an array of shape {tuple(value.shape)}")
        return aligned_copy(value, self.dtype)

    def _build(self, rng):
        return self.input_dim

    # -- computation -------------------------------------------------------
    def forward(self, X, training=False):
        """Output for X of shape (batch, input_dim)."""
        raise NotImplementedError

    def backward(self, dY, need_dX=True):
        """Fill ``grads`` from dY (batch, output_dim); return dX (or None when not needed)."""
        raise NotImplementedError

    def penalty(self):
        """The regularization penalty this layer adds to the loss."""
        return 0.0

    def apply_constraints(self):
        """Project the weights back onto their constraints after an update."""

    def _buffer(self, key, shape, dtype=None):
        """A reusable array for `key` (of the layer's dtype unless `dtype` is given), remade
        only when the shape changes."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape:
            buf = np.empty(shape, dtype=self.dtype if dtype is None else dtype)
            self._buffers[key] = buf
        return buf

    # -- weights and config ------------------------------------------------
    @property
    def weights(self):
        return list(self.params)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def check_weights(self, weights):
        """`weights` as arrays, after checking that `set_weights` would take them all."""
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"layer {self.name} takes {len(own)} arrays, got {len(weights)}")
        values = [np.asarray(value) for value in weights]
        for target, value in zip(own, values):
            if value.shape != target.shape:
                raise ValueError(f"layer {self.name}: weight of shape {target.shape} "
                                 f"cannot take an array of shape {value.shape}")
        return values

    def set_weights(self, weights):
        """Copy `weights` into the layer's; on an error no weight has changed."""
        for target, value in zip(self.weights, self.check_weights(weights)):
            target[...] = value

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class Dense(Layer):
    """Y = act(X @ kernel + bias), kernel of shape (input_dim, units).

    Parameters
    ----------
    units : int
    activation : str, `fastnn.activations.Activation` or None
    use_bias : bool
    kernel_initializer, bias_initializer : str, initializer or config
    kernel_regularizer, bias_regularizer : regularizer, str or None
    kernel_constraint : constraint, str or None
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, name=None):
        super().__init__(name)
        self.units = check_int(units, "units", low=1)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.kernel_mask = None  # set by pruning: pruned weights stay exactly zero
        self.keep_preact = False  # set by the model when the loss reads this layer's logits

    def _build(self, rng):
        self.kernel = self._weight((self.input_dim, self.units), self.kernel_initializer, rng)
        self.params = [self.kernel]
        if self.use_bias:
            self.bias = self._weight((self.units,), self.bias_initializer, rng)
            self.params.append(self.bias)
        else:
            self.bias = None
        self.grads = [aligned_full(p.shape, 0, p.dtype) for p in self.params]
        act = self.activation
        self._act = act_kernels.activation_code(act.kernel)
        self._alpha = act_kernels.alpha_array(act.kernel, act.alpha, self.units, self.dtype)
        self._needs_preact = act.needs_preact
        return self.units

    def forward(self, X, training=False):
        batch = X.shape[0]
        if training:
            Y = self._buffer("Y", (batch, self.units))
            keep = self._needs_preact or self.keep_preact
            Z = self._buffer("Z", (batch, self.units)) if keep else None
        else:
            Y, Z = np.empty((batch, self.units), self.dtype), None
        dense_kernels.forward_into(X, self.kernel, self.bias, Y, Z, self._act, self._alpha,
                                   get_num_threads())
        if training:
            self._X, self._Z, self._Y = X, (Y if Z is None else Z), Y
        return Y

    def inference_step(self):
        """(kernel, bias, activation code, slope array): what `forward` runs at inference,
        as `fastnn._kernels.dense.DenseChain` takes it; the layer's own arrays, not copies."""
        return self.kernel, self.bias, self._act, self._alpha

    def forward_with_logits(self, X):
        """(act(Z), Z) for Z = X @ kernel + bias, at inference (a fused loss reads Z)."""
        Y = np.empty((X.shape[0], self.units), self.dtype)
        Z = np.empty_like(Y)
        dense_kernels.forward_into(X, self.kernel, self.bias, Y, Z, self._act, self._alpha,
                                   get_num_threads())
        return Y, Z

    def backward(self, dY, need_dX=True, linear=False):
        """Gradients from dY; `linear` when dY is already dZ (a fused loss gave it)."""
        batch = dY.shape[0]
        dX = self._buffer("dX", (batch, self.input_dim)) if need_dX else None
        dW = self.grads[0]
        db = self.grads[1] if self.use_bias else self._buffer("db", (self.units,))
        dZ = self._buffer("dZ", dY.shape)
        dense_kernels.backward_into(dY, self._X, self.kernel, self._Z, self._Y, dZ, dW, db, dX,
                                    LINEAR if linear else self._act, self._alpha,
                                    get_num_threads())
        if self.kernel_regularizer is not None:
            self.kernel_regularizer.add_gradient(self.kernel, dW)
        if self.use_bias and self.bias_regularizer is not None:
            self.bias_regularizer.add_gradient(self.bias, db)
        if self.kernel_mask is not None:
            dW *= self.kernel_mask
        return dX

    def penalty(self):
        total = 0.0
        if self.kernel_regularizer is not None:
            total += self.kernel_regularizer.penalty(self.kernel)
        if self.use_bias and self.bias_regularizer is not None:
            total += self.bias_regularizer.penalty(self.bias)
        return total

    def apply_constraints(self):
        if self.kernel_constraint is not None:
            self.kernel_constraint(self.kernel)
        if self.kernel_mask is not None:
            self.kernel *= self.kernel_mask

    def get_config(self):
        return {
            "name": self.name, "units": self.units,
            "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _maybe_serialize(regularizers, self.kernel_regularizer),
            "bias_regularizer": _maybe_serialize(regularizers, self.bias_regularizer),
            "kernel_constraint": _maybe_serialize(constraints, self.kernel_constraint),
        }


def _maybe_serialize(module, obj):
    return None if obj is None else module.serialize(obj)


class Activation(Layer):
    """Applies an activation by name (any of `fastnn.activations.NAMES`)."""

    def __init__(self, activation, name=None):
        super().__init__(name)
        self.activation = activations.get(activation)

    def _build(self, rng):
        act = self.activation
        self._act = act_kernels.activation_code(act.kernel)
        self._alpha = act_kernels.alpha_array(act.kernel, act.alpha, self.input_dim, self.dtype)
        return self.input_dim

    def forward(self, X, training=False):
        Y = self._buffer("Y", X.shape) if training else np.empty_like(X)
        act_kernels.forward_into(self._act, X, Y, self._alpha, get_num_threads())
        if training:
            self._Z, self._Y = X, Y
        return Y

    def backward(self, dY, need_dX=True):
        dX = self._buffer("dX", dY.shape)
        act_kernels.backward_into(self._act, self._Z, self._Y, dY, dX, self._alpha,
                                  get_num_threads())
        return dX

    def get_config(self):
        return {"name": self.name, "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Inverted dropout: in training, drop each input with probability `rate` and scale the
    rest by 1 / (1 - rate); the identity at inference."""

    def __init__(self, rate, name=None):
        super().__init__(name)
        self.rate = check_real(rate, "dropout rate", 0.0, 1.0, closed="left")

    def _build(self, rng):
        self._rng = rng
        return self.input_dim

    def forward(self, X, training=False):
        if not training or self.rate == 0:
            self._scale = None
            return X
        u = self._buffer("u", X.shape)
        self._rng.random(dtype=u.dtype, out=u)
        scale = self._buffer("scale", X.shape)
        np.greater_equal(u, self.rate, out=scale, casting="unsafe")
        scale *= 1.0 / (1.0 - self.rate)
        self._scale = scale
        return np.multiply(X, scale, out=self._buffer("Y", X.shape))

    def backward(self, dY, need_dX=True):
        if self._scale is None:
            return dY
        return np.multiply(dY, self._scale, out=self._buffer("dX", dY.shape))

    def get_config(self):
        return {"name": self.name, "rate": self.rate}


class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise of `stddev` to the inputs in training (a vector form of
    data augmentation); the identity at inference."""

    def __init__(self, stddev, name=None):
        super().__init__(name)
        self.stddev = check_real(stddev, "stddev", low=0.0)

    def _build(self, rng):
        self._rng = rng
        return self.input_dim

    def forward(self, X, training=False):
        if not training or self.stddev == 0:
            return X
        noise = self._buffer("noise", X.shape)
        self._rng.standard_normal(dtype=noise.dtype, out=noise)
        noise *= self.stddev
        return np.add(X, noise, out=self._buffer("Y", X.shape))

    def backward(self, dY, need_dX=True):
        return dY

    def get_config(self):
        return {"name": self.name, "stddev": self.stddev}


class BatchNormalization(Layer):
    """Per-feature normalization with PyTorch's conventions.

    Training uses the batch mean and (biased) variance and updates
    ``running = (1 - momentum) * running + momentum * batch``, the running variance with
    the unbiased batch variance; inference uses the running statistics. ``gamma`` and
    ``beta`` are learned. Weights in Keras order: gamma, beta, running mean, running var.
    """

    def __init__(self, momentum=0.1, eps=1e-5, name=None):
        super().__init__(name)
        self.momentum = check_real(momentum, "momentum", 0.0, 1.0)
        self.eps = check_real(eps, "eps", low=0.0, closed="neither")

    def _build(self, rng):
        n = self.input_dim
        if np.dtype(self.dtype).type(self.eps) < np.finfo(self.dtype).tiny:
            raise ValueError(f"eps={self.eps} is below the smallest normal {self.dtype.name}")
        ones, zeros = initializers.get("ones"), initializers.get("zeros")
        self.gamma = self._weight((n,), ones, rng)
        self.beta = self._weight((n,), zeros, rng)
        self.running_mean = self._weight((n,), zeros, rng)
        self.running_var = self._weight((n,), ones, rng)
        if np.any(self.running_var < 0):
            raise ValueError(f"layer {self.name!r}: running_var must be non-negative")
        self.params = [self.gamma, self.beta]
        self.grads = [np.zeros_like(self.gamma), np.zeros_like(self.beta)]
        return n

    @property
    def weights(self):
        return [self.gamma, self.beta, self.running_mean, self.running_var]

    def forward(self, X, training=False):
        if not training:
            inv = 1.0 / np.sqrt(self.running_var + self.eps)
            return (X - self.running_mean) * (inv * self.gamma) + self.beta
        n = X.shape[0]
        if n < 2:
            raise ValueError("BatchNormalization needs at least 2 samples per training batch")
        mean = X.mean(axis=0)
        var = X.var(axis=0)
        m = self.momentum
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        self.running_var += m * var * (n / (n - 1))
        self._inv_std = (1.0 / np.sqrt(var + self.eps)).astype(self.dtype)
        self._xhat = ((X - mean) * self._inv_std).astype(self.dtype, copy=False)
        return self._xhat * self.gamma + self.beta

    def backward(self, dY, need_dX=True):
        xhat = self._xhat
        np.sum(dY * xhat, axis=0, out=self.grads[0])
        np.sum(dY, axis=0, out=self.grads[1])
        if not need_dX:
            return None
        n = dY.shape[0]
        g = self.gamma * self._inv_std
        return (g / n) * (n * dY - self.grads[1] - xhat * self.grads[0])

    def inference_affine(self):
        """(scale, shift), float64: the layer at inference is ``x * scale + shift``."""
        scale = self.gamma.astype(np.float64) / np.sqrt(self.running_var.astype(np.float64)
                                                        + self.eps)
        return scale, self.beta - self.running_mean * scale

    def get_config(self):
        return {"name": self.name, "momentum": self.momentum, "eps": self.eps}


class Normalization(Layer):
    """Per-feature standardization with fixed statistics: ``(x - mean) / sqrt(variance)``.

    The statistics come from `adapt` (Keras's meaning: the mean and the biased variance
    of each feature of the data) or from ``mean`` and ``variance``. A feature of zero
    variance is left unscaled (only centred), never divided by zero. The statistics are
    the layer's weights (not trained), so they are saved with the model, and
    `fastnn.deploy` folds the layer into the Dense layer after it.

    Parameters
    ----------
    axis : -1
        The feature axis of (samples, features) inputs; the only one fastnn has.
    mean, variance : array_like of shape (features,) or scalar, optional
        Fixed statistics, instead of `adapt`.
    """

    def __init__(self, axis=-1, mean=None, variance=None, name=None):
        super().__init__(name)
        if axis not in (-1, 1) or isinstance(axis, bool):
            raise ValueError(f"Normalization takes axis=-1 (the features of (samples, "
                             f"features) inputs), got {axis!r}")
        if (mean is None) != (variance is None):
            raise ValueError("give both mean and variance, or neither (and call adapt)")
        self.axis = -1
        self._stats = None
        if mean is not None:
            self._stats = self._check_stats(mean, variance)

    @staticmethod
    def _check_stats(mean, variance):
        mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        variance = np.atleast_1d(np.asarray(variance, dtype=np.float64))
        if mean.ndim != 1 or variance.shape != mean.shape:
            raise ValueError(f"mean and variance must be scalars or 1-D of one length, got "
                             f"shapes {mean.shape} and {variance.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(variance))) \
                or np.any(variance < 0):
            raise ValueError("mean and variance must be finite, and variance non-negative")
        return mean, variance

    @property
    def adapted(self):
        """True once the layer has statistics (from adapt, the constructor or set_weights)."""
        return self._stats is not None

    def adapt(self, X):
        """Set the statistics to each feature's mean and (biased) variance over X (n, d)."""
        X = as_input(X, np.float64, allow_empty=False)
        if self.built and X.shape[1] != self.input_dim:
            raise ValueError(f"layer {self.name!r} is built for {self.input_dim} features, but "
                             f"X has shape {X.shape}")
        self._stats = (X.mean(axis=0), X.var(axis=0))
        if self.built:
            self._apply_stats()
        return self

    def _build(self, rng):
        loading = self._given is not None
        self.mean = self._weight((self.input_dim,), initializers.get("zeros"), rng)
        self.variance = self._weight((self.input_dim,), initializers.get("ones"), rng)
        if loading:
            if np.any(self.variance < 0):
                raise ValueError(f"layer {self.name!r}: variance must be non-negative")
            self._stats = (self.mean.astype(np.float64), self.variance.astype(np.float64))
            self._refresh()
        elif self._stats is not None:
            self._apply_stats()
        else:
            self._refresh()
        return self.input_dim

    def _apply_stats(self):
        mean, variance = self._stats
        if mean.shape[0] == 1:
            mean = np.full(self.input_dim, mean[0])
            variance = np.full(self.input_dim, variance[0])
        if mean.shape[0] != self.input_dim:
            raise ValueError(f"layer {self.name!r}: statistics for {mean.shape[0]} features, "
                             f"but the input has {self.input_dim}")
        self.mean[...] = mean
        self.variance[...] = variance
        self._refresh()

    def _refresh(self):
        """Derive the per-feature ``1 / sigma`` (1 for a zero-variance feature)."""
        mean = self.mean.astype(np.float64)
        sigma = np.sqrt(self.variance.astype(np.float64))
        sigma[sigma <= 1e-12 * np.maximum(np.abs(mean), 1.0)] = 1.0
        self._inv_sigma = (1.0 / sigma).astype(self.dtype)

    @property
    def weights(self):
        return [self.mean, self.variance]

    def check_weights(self, weights):
        values = super().check_weights(weights)
        if np.any(np.asarray(values[1], dtype=np.float64) < 0):
            raise ValueError(f"layer {self.name!r}: variance must be non-negative")
        return values

    def set_weights(self, weights):
        super().set_weights(weights)
        self._stats = (self.mean.astype(np.float64), self.variance.astype(np.float64))
        self._refresh()

    def forward(self, X, training=False):
        if self._stats is None:
            raise RuntimeError(f"layer {self.name!r} (Normalization) has no statistics: call "
                               f"its adapt(X) or give mean and variance")
        Y = np.subtract(X, self.mean, out=self._buffer("Y", X.shape) if training else None)
        Y *= self._inv_sigma
        return Y

    def backward(self, dY, need_dX=True):
        return np.multiply(dY, self._inv_sigma, out=self._buffer("dX", dY.shape)) \
            if need_dX else None

    def inference_affine(self):
        """(scale, shift), float64: the layer is ``x * scale + shift``."""
        if self._stats is None:
            raise RuntimeError(f"layer {self.name!r} (Normalization) has no statistics")
        scale = self._inv_sigma.astype(np.float64)
        return scale, -self.mean.astype(np.float64) * scale

    def get_config(self):
        return {"name": self.name, "axis": self.axis}


class PReLU(Layer):
    """x if x > 0 else alpha[j] * x, with one learnable slope per unit."""

    def __init__(self, alpha_initializer=0.25, name=None):
        super().__init__(name)
        self.alpha_initializer = initializers.get(alpha_initializer)

    def _build(self, rng):
        self.alpha = self._weight((self.input_dim,), self.alpha_initializer, rng)
        self.params = [self.alpha]
        self.grads = [np.zeros_like(self.alpha)]
        return self.input_dim

    def forward(self, X, training=False):
        Y = self._buffer("Y", X.shape) if training else np.empty_like(X)
        act_kernels.forward_into(PRELU, X, Y, self.alpha, get_num_threads())
        if training:
            self._Z, self._Y = X, Y
        return Y

    def backward(self, dY, need_dX=True):
        act_kernels.prelu_alpha_grad_into(self._Z, dY, self.grads[0])
        dX = self._buffer("dX", dY.shape)
        act_kernels.backward_into(PRELU, self._Z, self._Y, dY, dX, self.alpha, get_num_threads())
        return dX

    def get_config(self):
        return {"name": self.name,
                "alpha_initializer": initializers.serialize(self.alpha_initializer)}


class Maxout(Dense):
    """units outputs, each the largest of `pieces` linear pieces: a Dense layer of
    units * pieces outputs followed by a max over each group of `pieces` columns."""

    def __init__(self, units, pieces=2, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, name=None):
        pieces = check_int(pieces, "pieces", low=1)
        super().__init__(units * pieces, None, True, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, kernel_constraint, name)
        self.pieces = int(pieces)
        self.maxout_units = int(units)

    def _build(self, rng):
        super()._build(rng)
        return self.maxout_units

    def forward(self, X, training=False):
        Z = super().forward(X, training)
        if not training:
            return act_kernels.maxout_forward(Z, self.pieces)[0]
        # the unchecked kernels, on buffers made here (as Dense does with its own)
        shape = (X.shape[0], self.maxout_units)
        Y = self._buffer("maxout_Y", shape)
        idx = self._idx = self._buffer("maxout_idx", shape, np.int32)
        act_kernels._maxout_forward(Z, Y, idx, self.pieces)
        return Y

    def backward(self, dY, need_dX=True):
        dZ = self._buffer("maxout_dZ", (dY.shape[0], self.units))
        dZ.fill(0)
        act_kernels._maxout_backward(dY, self._idx, dZ, self.pieces)
        return super().backward(dZ, need_dX)

    def get_config(self):
        config = super().get_config()
        del config["activation"], config["use_bias"]
        config["units"] = self.maxout_units
        config["pieces"] = self.pieces
        return config


LAYERS = {cls.__name__: cls for cls in (Dense, Activation, Dropout, BatchNormalization,
                                        Normalization, PReLU, Maxout, GaussianNoise)}
"""The fixed table of layer classes by name: files name a layer, never import one."""


def get(config):
    """A layer from ``{"class_name": ..., "config": {...}}``, through the fixed table."""
    from fastnn import _registry
    table = {name.lower(): cls for name, cls in LAYERS.items()}
    return _registry.get(config, table, "layer", Layer)
