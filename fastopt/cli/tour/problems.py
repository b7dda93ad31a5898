"""Built-in synthetic problems, with gradients written by hand in NumPy (no autograd).

* :func:`two_moons` and a small tanh network (:func:`mlp_init`, :func:`mlp_loss_and_grads`):
  binary classification that a linear model cannot solve.
* :func:`quadratic`: ``0.5 * w^T H w`` with the Hessian's eigenvalues spread over several
  decades, the simplest ill-conditioned problem.

The 2-D surfaces whose paths the report draws (Rosenbrock's valley, a saddle) are in
:mod:`~fastopt.cli.tour.trajectories`.
"""

from __future__ import annotations

import numpy as np


def two_moons(n_samples: int, rng: np.random.Generator, noise: float = 0.1, dtype=np.float64):
    """Two interleaved half-circles in 2-D; labels 0 and 1."""
    half = n_samples // 2
    angle = rng.uniform(0.0, np.pi, n_samples)
    upper = np.stack([np.cos(angle[:half]), np.sin(angle[:half])], axis=1)
    lower = np.stack([1.0 - np.cos(angle[half:]), 0.5 - np.sin(angle[half:])], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0.0, noise, (n_samples, 2))
    x = (x - x.mean(axis=0)) / x.std(axis=0)  # standardised inputs
    y = np.concatenate([np.zeros(half), np.ones(n_samples - half)])
    return x.astype(dtype), y.astype(dtype)


def mlp_init(sizes: list[int], rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
    """Weights and biases ``[W1, b1, W2, b2, ...]`` of a tanh network, e.g. ``sizes=[2, 32, 1]``."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype))
        params.append(np.zeros(fan_out, dtype))
    return params


def mlp_loss(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """The loss of :func:`mlp_loss_and_grads` alone (the forward pass), for monitoring."""
    h = x
    for k in range(0, len(params) - 2, 2):
        h = np.tanh(h @ params[k] + params[k + 1])
    logit = (h @ params[-2])[:, 0] + params[-1][0]
    return float(np.mean(np.logaddexp(0.0, logit) - y * logit))


def mlp_loss_and_grads(params: list[np.ndarray], x: np.ndarray, y: np.ndarray):
    """Mean binary cross-entropy of a tanh network with one output logit, and its gradients.

    Forward: ``h_0 = x``, ``h_k = tanh(h_{k-1} W_k + b_k)`` for hidden layers, logit ``z = h W + b``.
    Backward (backpropagation): ``dL/dz = (sigmoid(z) - y) / n``, then for each layer from the top
    ``dW = h_prev^T dz``, ``db = sum(dz)``, ``dh_prev = dz W^T``, ``dz_prev = dh_prev * (1 - h_prev^2)``.
    """
    activations = [x]
    for k in range(0, len(params) - 2, 2):
        activations.append(np.tanh(activations[-1] @ params[k] + params[k + 1]))
    logit = (activations[-1] @ params[-2])[:, 0] + params[-1][0]
    loss = float(np.mean(np.logaddexp(0.0, logit) - y * logit))  # log(1 + e^z) - y z, overflow-safe
    dz = (0.5 * (1.0 + np.tanh(0.5 * logit)) - y)[:, None] / len(y)  # sigmoid(z) - y, overflow-safe
    grads = [None] * len(params)
    for k in range(len(params) - 2, -1, -2):
        h_prev = activations[k // 2]
        grads[k] = h_prev.T @ dz
        grads[k + 1] = dz.sum(axis=0)
        if k:
            dz = (dz @ params[k].T) * (1.0 - h_prev * h_prev)
    return loss, [g.astype(p.dtype) for g, p in zip(grads, params)]


def quadratic_curvatures(dim: int, condition: float) -> np.ndarray:
    """Curvatures ``h_i`` log-spaced from 1 to ``condition`` (the Hessian's eigenvalues)."""
    return np.logspace(0.0, np.log10(condition), dim)


def rotated_hessian(dim: int, condition: float, rng: np.random.Generator) -> np.ndarray:
    """``R diag(h) R^T``: the curvatures of :func:`quadratic_curvatures` along random orthogonal
    directions, so that no coordinate axis is an eigen-direction and per-parameter scaling alone
    cannot undo the conditioning."""
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (rotation * quadratic_curvatures(dim, condition)) @ rotation.T


def quadratic(w: np.ndarray, hessian: np.ndarray):
    """``0.5 * w^T H w`` and its gradient ``H w``."""
    grad = hessian @ w
    return float(0.5 * w @ grad), grad