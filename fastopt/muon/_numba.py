"""Muon, Numba twin of :func:`fastopt.muon.reference.muon_update`; maths in :mod:`fastopt.muon`.

The momentum (1)-(2) and the norm (3) in one pass; then Newton-Schulz (4)-(6) on the scratch
matrices of ``workspace`` (``X``, its transpose ``T``, the product ``Y``, the Gram matrix ``A``
and the polynomial ``G``), every product ``left @ right.T`` in rule 4's order
(:func:`fastopt._sums._numba.matmul_rows`: both operands read along ``k``); then the step (8)-(9).
"""

import numpy as np

from .._jit import jit_kernel, require_lengths, require_matrices, require_size
from .._sums._numba import NO_LANES, add_to_lanes, combine_lanes, matmul_rows


@jit_kernel
def muon_update(param, grad, momentum_buffer, workspace, rows, cols, nesterov, momentum, weight, coefficient_a, coefficient_b, coefficient_c, eps,
                ns_steps, decay_factor, lr, adjust, num_threads):
    n = param.shape[0]
    require_matrices("muon_update", n, rows, cols)
    require_size("muon_update", "param", n, rows * cols, "rows * cols")
    require_lengths("muon_update", param, "grad momentum_buffer", (grad, momentum_buffer))
    small = min(rows, cols)
    large = max(rows, cols)
    require_size("muon_update", "workspace", workspace.shape[0], 3 * n + 2 * small * small,
                 "workspace_length(rows, cols)")
    if n == 0:
        return
    dtype = param.dtype.type
    one = dtype(1.0)
    weight_complement = one - weight  # torch's lerp: 1 - w in the arrays' dtype
    momentum_complement = one - momentum
    x_at, t_at, y_at, gram_at, poly_at = 0, n, 2 * n, 3 * n, 3 * n + small * small
    # the momentum and the update, into X in the wide orientation (X[j, i] = U[i, j] when rows > cols)
    for i in range(rows):
        for j in range(cols):
            k = i * cols + j
            g, buffer = grad[k], momentum_buffer[k]
            if abs(weight) < 0.5:
                buffer = buffer + weight * (g - buffer)                                 # (1)
            else:
                buffer = g - (g - buffer) * weight_complement
            momentum_buffer[k] = buffer
            if nesterov:
                if abs(momentum) < 0.5:
                    u = g + momentum * (buffer - g)                                     # (2)
                else:
                    u = buffer - (buffer - g) * momentum_complement
            else:
                u = buffer
            workspace[x_at + (j * rows + i if rows > cols else k)] = u
    # the norm in U's own order (row after row), rule 2
    lanes = NO_LANES
    if rows > cols:
        for i in range(rows):
            for j in range(cols):
                workspace[t_at + i * cols + j] = workspace[x_at + j * rows + i]
        lanes = add_to_lanes(lanes, workspace, t_at, n, True)
    else:
        lanes = add_to_lanes(lanes, workspace, x_at, n, True)
    norm = dtype(np.sqrt(combine_lanes(lanes)))                                          # (3)
    denominator = eps if norm < eps else norm  # torch's clamp(min=eps): a NaN norm stays NaN
    for k in range(n):
        workspace[x_at + k] = workspace[x_at + k] / denominator
    for _ in range(ns_steps):
        matmul_rows(workspace, x_at, workspace, x_at, small, small, large, workspace, gram_at, True)       # (4) A = X X^T
        matmul_rows(workspace, gram_at, workspace, gram_at, small, small, small, workspace, poly_at, True)  # A A (A = A^T)
        for k in range(small * small):
            workspace[poly_at + k] = coefficient_b * workspace[gram_at + k] + coefficient_c * workspace[poly_at + k]  # (5)
        for i in range(small):  # T = X^T, so that G X reads X's columns along k
            for j in range(large):
                workspace[t_at + j * small + i] = workspace[x_at + i * large + j]
        matmul_rows(workspace, poly_at, workspace, t_at, small, large, small, workspace, y_at, False)  # G X
        for k in range(n):
            workspace[x_at + k] = coefficient_a * workspace[x_at + k] + workspace[y_at + k]        # (6)
    ratio = np.sqrt(max(1.0, rows / cols)) if adjust == 0 else 0.2 * np.sqrt(max(rows, cols))
    step = dtype(-(lr * ratio))                                                         # (9)
    for i in range(rows):
        for j in range(cols):
            k = i * cols + j
            o = workspace[x_at + (j * rows + i if rows > cols else k)]                 # (7)
            p = param[k] * decay_factor                                                 # (8)
            param[k] = p + step * o                                                     # (9)
