"""Numpy twins of the optimizer kernels: same signatures, same in-place updates.

Arithmetic stays in the parameter's dtype (Python floats are cast to it), as in the kernels.
The kernels compute with subnormal values as zero (`subnormal.h`, on x86); the twins write
zero where a parameter or state would hold a subnormal, which is the same wherever a
subnormal appears only in the values written (a moment decaying towards zero).
"""
import numpy as np


def _flush(*arrays):
    """Subnormal values of the arrays (None skipped) set to zero, in place."""
    for a in arrays:
        if a is not None:
            a[np.abs(a) < np.finfo(a.dtype).tiny] = 0


def _decayed(param, grad, weight_decay):
    """The gradient with the L2 term, as a new array."""
    return grad + weight_decay * param if weight_decay != 0 else grad.copy()


def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0,
             nesterov=False, weight_decay=0.0, first=False, n_threads=None):
    """Twin of `fastnn._kernels.optim.sgd_step`."""
    d = _decayed(param, grad, weight_decay)
    if momentum_buffer is not None:
        if first:
            momentum_buffer[...] = d
        else:
            momentum_buffer[...] = momentum * momentum_buffer + (1 - dampening) * d
        d = d + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * d
    _flush(param, momentum_buffer)


def adagrad_step(param, grad, state_sum, *, lr, eps=1e-10, weight_decay=0.0, n_threads=None):
    """Twin of `fastnn._kernels.optim.adagrad_step`."""
    d = _decayed(param, grad, weight_decay)
    state_sum += d * d
    param -= lr * (d / (np.sqrt(state_sum) + eps))
    _flush(param, state_sum)


def rmsprop_step(param, grad, square_avg, grad_avg=None, momentum_buffer=None, *, lr,
                 alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, n_threads=None):
    """Twin of `fastnn._kernels.optim.rmsprop_step`."""
    d = _decayed(param, grad, weight_decay)
    square_avg[...] = alpha * square_avg + (1 - alpha) * (d * d)
    var = square_avg
    if grad_avg is not None:
        grad_avg += (1 - alpha) * (d - grad_avg)
        var = square_avg - grad_avg * grad_avg
    r = d / (np.sqrt(var) + eps)
    if momentum_buffer is not None:
        momentum_buffer[...] = momentum * momentum_buffer + r
        r = momentum_buffer
    param -= lr * r
    _flush(param, square_avg, grad_avg, momentum_buffer)


def adadelta_step(param, grad, square_avg, acc_delta, *, lr=1.0, rho=0.9, eps=1e-6,
                  weight_decay=0.0, n_threads=None):
    """Twin of `fastnn._kernels.optim.adadelta_step`."""
    d = _decayed(param, grad, weight_decay)
    square_avg[...] = rho * square_avg + (1 - rho) * (d * d)
    u = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * d
    acc_delta[...] = rho * acc_delta + (1 - rho) * (u * u)
    param -= lr * u
    _flush(param, square_avg, acc_delta)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step_size, beta1,
              beta2, bias_correction2_sqrt, eps=1e-8, weight_decay=0.0, param_scale=1.0,
              n_threads=None):
    """Twin of `fastnn._kernels.optim.adam_step`."""
    if param_scale != 1:
        param *= param_scale
    d = _decayed(param, grad, weight_decay)
    exp_avg += (1 - beta1) * (d - exp_avg)
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * (d * d)
    v = exp_avg_sq
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    param -= step_size * (exp_avg / (np.sqrt(v) / bias_correction2_sqrt + eps))
    _flush(param, exp_avg, exp_avg_sq, max_exp_avg_sq)
