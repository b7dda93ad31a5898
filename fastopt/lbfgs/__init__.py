r"""L-BFGS: a quasi-Newton direction from the last ``m`` steps and gradient changes, with an
optional strong-Wolfe line search.

Unlike every other optimizer in fastopt, L-BFGS needs the loss and the gradient at points of its
own choosing: ``step(closure)`` calls the closure up to ``max_eval`` times and runs up to
``max_iter`` iterations. Each iteration, on the flat vector ``x`` of all parameters, with
gradient ``g`` and the history ``(s_i, y_i, rho_i)``, ``i = 0 .. m-1`` (oldest first; tags are
used in ``reference.py``, ``_numba.py`` and ``_cython.pyx``)::

    (1)   y = g_k - g_{k-1};  s = t_{k-1} * d_{k-1}                   # the last gradient change and step
    (2)   rho = 1 / dot(y, s)                                          # kept only if dot(y, s) > 1e-10: (s, y, rho) joins the history, the oldest pair leaves beyond history_size
    (3)   gamma = dot(y, s) / dot(y, y)                                # the initial inverse Hessian is gamma I
    (4)   q = -g_k
    (5)   alpha_i = rho_i * dot(s_i, q);  q = q - alpha_i * y_i        # for i = m-1 down to 0
    (6)   r = gamma * q
    (7)   beta_i = rho_i * dot(y_i, r);  r = r + (alpha_i - beta_i) * s_i   # for i = 0 up to m-1
    (8)   d_k = r                                                      # which is -H_k g_k
    (9)   x_{k+1} = x_k + t_k * d_k
    (10)  dot(g_k, d_k) > -tolerance_change                            # then stop: not a descent direction
    (11)  max(abs(g_{k+1})) <= tolerance_grad                          # then stop; also when max|t_k d_k| <= tolerance_change, |f_{k+1} - f_k| < tolerance_change, or max_iter or max_eval is reached
    (12)  t_0 = min(1, 1 / sum(abs(g_0))) * lr                         # on the first iteration; t_k = lr after

(4)-(8) are the *two-loop recursion* [1]_ [2]_: ``r`` is the product of the L-BFGS inverse
Hessian ``H_k`` (``m`` BFGS updates of ``gamma I``) with ``-g_k``, computed in ``4 m n``
multiply-adds without ever forming a matrix. With ``line_search_fn=None`` the step is the fixed
``t_k`` of (12). With ``line_search_fn="strong_wolfe"``, ``t_k`` starts there and is searched
along ``d_k`` for a point satisfying the **strong Wolfe conditions** [3]_ (ch. 3), with
``c1 = 1e-4``, ``c2 = 0.9``::

    f(x + t d) <= f(x) + c1 t (g . d)                 # sufficient decrease (Armijo)
    |g(x + t d) . d| <= c2 |g . d|                    # curvature (strong)

by bracketing and zooming with cubic interpolation (Nocedal and Wright's algorithms 3.5 and 3.6,
as minFunc and torch implement them): at most ``max_eval`` evaluations in the step.

This is torch.optim.LBFGS's algorithm and control flow (PyTorch 2.13), line for line: the same
tests in the same order, the same history update, the same line search. The control flow is
written once, here (``lbfgs_step``), and shared by the three backends and by both front ends
(``fastopt.LBFGS`` on NumPy arrays, ``fastopt.torch.LBFGS`` on tensors); the vector work is a
handful of kernels over the flat vector (``reference.py``, ``_numba.py``, ``_cython.pyx``):

=========================  ===========================================================
kernel                     computes
=========================  ===========================================================
``dot(x, y)``              ``x . y``: (2), (3), (5), (7), (10)
``add_scaled_then_dot``    ``t += a x``, then ``o . t``: one step of (5) or (7) and the
                           dot product opening the next, in one pass over ``q`` or ``r``
``add_scaled``             ``t += a x``: the last step of (5) and (7), the move (9)
``scaled``                 ``out = a x``: (1), (4), (6)
``difference``             ``out = a - b``: (1)
``max_abs_scaled``         ``max|a x_i|``: (11)
``sum_abs``                ``|x|_1``: (12)
=========================  ===========================================================

**Arithmetic.** Every dot product and sum is accumulated in float64 in fastopt's summation order
(:mod:`fastopt._sums`: 8 lanes, one fixed tree) and rounded to the arrays' dtype, as torch's
``dot`` returns a tensor of that dtype: so the three twins agree bit for bit. The scalars
(``rho``, ``gamma``, ``alpha_i``, ``beta_i``, ``alpha_i - beta_i``) are float64 operations on
such values rounded to the dtype, which for float32 is exactly float32 arithmetic (a product or
quotient of two float32 values is correctly rounded through float64). Element-wise updates are
in the arrays' dtype. Against torch.optim.LBFGS in float64 the only differences are the order
of torch's BLAS dot products (and its fused multiply-adds), and the runs take the same iterations
and evaluations. With fixed steps, parameters agree to 5.5e-15 relative and directions to 1.3e-12
over 100 iterations (least squares, Rosenbrock); with the strong-Wolfe search, to 5.5e-14 and
9.8e-13 over 20 iterations, 1.6e-12 and 7.6e-10 over 40, and the difference keeps growing (8.6e-9
for the parameters of a least-squares problem after 100 iterations, 3e-6 on Rosenbrock's valley):
each direction feeds the line search's choice of the next step, which amplifies a rounding
difference the way a fixed step does not. In float32, torch accumulates its dot
products in float32 and fastopt in float64: the runs agree as two float32 runs of an iterative
method do, not to a few ulp.

**A step is applied whole or not at all.** The closure's results are checked at every
evaluation (the loss a real number, one gradient per parameter of its dtype and shape); an
invalid one, or an exception from the closure, restores the parameters to where the step found
them and leaves the state unchanged (a copy of the parameters is kept for the step's duration).
A non-finite loss or gradient is not an error (torch's behaviour: the tests compare NaN as
false and the step stops or continues as torch's does).

Symbols
-------
=========================  ====================  ==================================  ============================
fastopt / torch.optim      Nocedal & Wright      torch state key                     meaning
=========================  ====================  ==================================  ============================
``lr``                     alpha_0 (initial)     --                                  the step length tried first
``history_size``           m                     --                                  pairs kept
``max_iter``               --                    ``n_iter`` (a counter)              iterations per ``step``
``max_eval``               --                    ``func_evals`` (a counter)          closure calls per ``step``
``tolerance_grad``         epsilon               --                                  (11) on max|g|
``tolerance_change``       --                    --                                  (10), (11)
``line_search_fn``         --                    --                                  None or ``"strong_wolfe"``
``d``                      p_k                   ``d``                               the direction (8)
``t``                      alpha_k               ``t``                               the step length (9)
``s_i``, ``y_i``           s_i, y_i              ``old_stps``, ``old_dirs``          (1)
``rho_i``                  rho_i                 ``ro``                              (2)
``gamma``                  gamma_k (7.20)        ``H_diag``                          (3)
``alpha_i``                alpha_i               ``al``                              (5)
``g_{k-1}``, ``f_{k-1}``   --                    ``prev_flat_grad``, ``prev_loss``   the last gradient and loss
=========================  ====================  ==================================  ============================

(Keras and optax: optax's ``lbfgs`` is the same recursion, with ``memory_size`` for ``history_size``,
``scale_init_precond`` for the ``gamma`` of (3) and a zoom line search (``scale_by_zoom_linesearch``)
by default; Keras has no L-BFGS.)

References
----------
.. [1] J. Nocedal, "Updating quasi-Newton matrices with limited storage", Mathematics of
   Computation vol. 35, no. 151, 1980, pp. 773-782.
.. [2] D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large scale
   optimization", Mathematical Programming 45, 1989, pp. 503-528.
.. [3] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006: ch. 7
   (limited-memory quasi-Newton, algorithm 7.4, the two-loop recursion) and ch. 3 (the line
   search, algorithms 3.5 and 3.6, cubic interpolation 3.5.2).
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import _backends
from .._threads import one_at_a_time
from .._validation import SUPPORTED_DTYPES, check_grad, check_lr, check_param, check_real, flat_view, memory_extent

CURVATURE_THRESHOLD = 1e-10
"""(2): a pair ``(s, y)`` enters the history only if ``y . s`` exceeds this (torch's constant)."""

C1, C2 = 1e-4, 0.9
"""The strong Wolfe constants: sufficient decrease and curvature."""

LINE_SEARCHES = (None, "strong_wolfe")

STATE_KEYS = ("func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
              "prev_loss", "al")
"""torch.optim.LBFGS's state keys (all under the first parameter), in the order torch sets them."""


# --------------------------------------------------------------------------------------------
# What a front end provides: the closure's results, and moving the parameters
# --------------------------------------------------------------------------------------------
class Front:
    """The parameters as one flat vector, seen by :func:`lbfgs_step` through a front end: each
    front end gives the 1-D views of its parameters and says how to call the closure."""

    def __init__(self, params: list, flat: list[np.ndarray], closure: Callable, kernels) -> None:
        self.params, self.flat, self.closure, self.kernels = params, flat, closure, kernels
        self.dtype = flat[0].dtype
        self.offsets = np.cumsum([0] + [view.size for view in flat]).tolist()

    def evaluate(self) -> tuple[Any, float, np.ndarray]:
        """Call the closure: its loss as returned, as a float, and the flat gradient (a new array)."""
        raise NotImplementedError

    def move(self, t: float, d: np.ndarray) -> None:
        """``x += t d`` (9), parameter by parameter."""
        step = self.dtype.type(t)
        for i, flat in enumerate(self.flat):
            self.kernels.add_scaled(flat, d[self.offsets[i]:self.offsets[i + 1]], step)      # (9)

    def save(self) -> list[np.ndarray]:
        """A copy of the parameters."""
        return [flat.copy() for flat in self.flat]

    def restore(self, saved: list[np.ndarray]) -> None:
        """Copy the saved values back into the parameters."""
        for flat, values in zip(self.flat, saved):
            np.copyto(flat, values)


# --------------------------------------------------------------------------------------------
# Hyperparameters
# --------------------------------------------------------------------------------------------
def _check_count(name: str, value: object) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_tolerance(name: str, value: object) -> None:
    check_real(name, value)
    if not 0.0 <= value < math.inf:  # type: ignore[operator]
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")


def check_hyperparameters(group: dict[str, Any]) -> None:
    """torch's condition on ``lr`` (with its message), and what torch leaves to fail later."""
    check_lr(group["lr"])
    _check_count("max_iter", group["max_iter"])
    _check_count("max_eval", group["max_eval"])
    _check_tolerance("tolerance_grad", group["tolerance_grad"])
    _check_tolerance("tolerance_change", group["tolerance_change"])
    _check_count("history_size", group["history_size"])
    if group["line_search_fn"] not in LINE_SEARCHES or not isinstance(group["line_search_fn"], (str, type(None))):
        raise ValueError(f"line_search_fn must be None or 'strong_wolfe', got {group['line_search_fn']!r}")


def default_max_eval(max_iter: object, max_eval: object) -> object:
    """torch's default: ``max_iter * 5 // 4`` evaluations when ``max_eval`` is None."""
    if max_eval is None:
        _check_count("max_iter", max_iter)
        return max_iter * 5 // 4  # type: ignore[operator]
    return max_eval


# --------------------------------------------------------------------------------------------
# The line search (Nocedal & Wright, algorithms 3.5 and 3.6, as torch.optim.LBFGS runs them)
# --------------------------------------------------------------------------------------------
def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through ``(x1, f1)``, ``(x2, f2)`` with slopes ``g1``, ``g2``,
    clipped to ``bounds`` (the bracket by default); the bounds' middle if the cubic has none."""
    x1, f1, g1, x2, f2, g2 = map(np.float64, (x1, f1, g1, x2, f2, g2))  # IEEE: x / 0 is inf, not an error
    xmin_bound, xmax_bound = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def strong_wolfe(evaluate_at, dot, t, d, f, g, gtd, d_norm, tolerance_change, max_ls):
    """A step ``t`` along ``d`` satisfying the strong Wolfe conditions (or the best bracketed
    point after ``max_ls`` evaluations): returns ``(f_new, g_new, t, evaluations)``.
    ``evaluate_at(t)`` is the loss and flat gradient at ``x + t d``, ``dot(g) = g . d``."""
    f_new, g_new = evaluate_at(t)
    ls_func_evals = 1
    gtd_new = dot(g_new)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:  # bracket an interval containing a point satisfying the conditions
        if f_new > (f + C1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -C2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)  # extrapolate: between 1.01 t and 10 t
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = evaluate_at(t)
        ls_func_evals += 1
        gtd_new = dot(g_new)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom: shrink the bracket until a point satisfies the conditions
    insuf_progress = False
    # (torch compares a one-point bracket with itself: a NaN loss there made it raise IndexError)
    low_pos, high_pos = (0, 1) if len(bracket) == 1 or bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # a point within 10 % of the bracket's ends twice running (or outside it) moves 10 % inside
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = evaluate_at(t)
        ls_func_evals += 1
        gtd_new = dot(g_new)
        ls_iter += 1
        if f_new > (f + C1 * t * gtd) or f_new >= bracket_f[low_pos]:  # not low enough: the new high
            bracket[high_pos], bracket_f[high_pos], bracket_g[high_pos], bracket_gtd[high_pos] = t, f_new, g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -C2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:  # the old high becomes the low
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos], bracket_g[low_pos], bracket_gtd[low_pos] = t, f_new, g_new, gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


# --------------------------------------------------------------------------------------------
# One step: torch.optim.LBFGS.step's control flow over the kernels
# --------------------------------------------------------------------------------------------
def lbfgs_step(front: Front, kernels, group: dict[str, Any], state: dict[str, Any]) -> Any:
    """Run one ``step(closure)``: up to ``max_iter`` iterations of (1)-(12) on ``front``'s
    parameters with ``kernels`` (a backend's module). ``state`` (torch's keys, NumPy values) is
    updated only when the step completes; any exception restores the parameters first."""
    saved = front.save()
    try:
        # the step's own scalars and casts follow IEEE quietly (a NaN loss, an overflow to inf, as
        # torch's tensors do); the closure runs with the caller's NumPy error settings
        with np.errstate(all="ignore"):
            return _run(_CallerErrors(front, np.geterr()), kernels, group, state)
    except BaseException:
        front.restore(saved)
        raise


class _CallerErrors:
    """``front`` whose closure runs under the NumPy error settings ``errors`` (the caller's)."""

    def __init__(self, front: Front, errors: dict[str, str]) -> None:
        self.front, self.errors, self.dtype = front, errors, front.dtype
        self.move, self.save, self.restore = front.move, front.save, front.restore

    def evaluate(self) -> tuple[Any, float, np.ndarray]:
        with np.errstate(**self.errors):
            return self.front.evaluate()


def _run(front: Front, kernels, group: dict[str, Any], state: dict[str, Any]) -> Any:
    cast = front.dtype.type  # a float64 value rounded to the arrays' dtype, as torch's tensors hold it
    one, minus_one = cast(1.0), cast(-1.0)

    def dot(x, y):
        return cast(kernels.dot(x, y))

    lr = float(group["lr"])
    max_iter, max_eval = group["max_iter"], group["max_eval"]
    tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
    history_size = group["history_size"]

    func_evals, total_iter = state.get("func_evals", 0), state.get("n_iter", 0)
    orig_loss, loss, flat_grad = front.evaluate()
    current_evals = 1
    func_evals += 1
    if kernels.max_abs_scaled(flat_grad, one) <= tolerance_grad:                      # (11) optimal already
        state["func_evals"], state["n_iter"] = func_evals, total_iter
        return orig_loss

    d, t = state.get("d"), state.get("t")
    old_dirs, old_stps, ro = list(state.get("old_dirs") or ()), list(state.get("old_stps") or ()), list(state.get("ro") or ())
    H_diag = state.get("H_diag")
    prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
    al = list(state["al"]) if "al" in state else None

    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        total_iter += 1
        if total_iter == 1:
            d = np.empty_like(flat_grad)
            kernels.scaled(d, flat_grad, minus_one)                                    # (4) d = -g
            old_dirs, old_stps, ro = [], [], []
            H_diag = 1
        else:
            y, s = np.empty_like(flat_grad), np.empty_like(flat_grad)
            kernels.difference(y, flat_grad, prev_flat_grad)                          # (1)
            kernels.scaled(s, d, cast(t))                                             # (1)
            ys = dot(y, s)                                                            # (2)
            if ys > CURVATURE_THRESHOLD:
                if len(old_dirs) == history_size:
                    old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                old_dirs.append(y), old_stps.append(s), ro.append(cast(1.0 / np.float64(ys)))  # (2)
                H_diag = cast(np.float64(ys) / np.float64(dot(y, y)))                                # (3)
            num_old = len(old_dirs)
            if al is None or len(al) < history_size:  # torch's list of history_size slots
                al = (al or []) + [None] * (history_size - len(al or []))
            q = np.empty_like(flat_grad)
            kernels.scaled(q, flat_grad, minus_one)                                   # (4) q = -g
            if num_old:
                s_dot_q = kernels.dot(old_stps[-1], q)
            for i in range(num_old - 1, -1, -1):                                      # (5)
                al[i] = cast(float(cast(s_dot_q)) * float(ro[i]))
                if i:
                    s_dot_q = kernels.add_scaled_then_dot(q, old_dirs[i], old_stps[i - 1], -al[i])
                else:
                    kernels.add_scaled(q, old_dirs[i], -al[i])
            d = q
            kernels.scaled(d, q, cast(H_diag))                                        # (6) r = gamma q, in place
            if num_old:
                y_dot_r = kernels.dot(old_dirs[0], d)
            for i in range(num_old):                                                  # (7)
                be_i = cast(float(cast(y_dot_r)) * float(ro[i]))
                step = cast(float(al[i]) - float(be_i))
                if i + 1 < num_old:
                    y_dot_r = kernels.add_scaled_then_dot(d, old_stps[i], old_dirs[i + 1], step)
                else:
                    kernels.add_scaled(d, old_stps[i], step)                          # (8) d = r
        prev_flat_grad = flat_grad  # never written again: each evaluation's gradient is a new array
        prev_loss = loss

        if total_iter == 1:                                                           # (12)
            inverse = cast(1.0 / np.float64(cast(kernels.sum_abs(flat_grad))))
            t = float(cast(float(inverse) * lr)) if inverse < 1.0 else lr
        else:
            t = lr
        gtd = dot(flat_grad, d)                                                       # (10)
        if gtd > -tolerance_change:
            break

        ls_func_evals = 0
        if group["line_search_fn"] is not None:
            x_init = front.save()

            def evaluate_at(step_length, x_init=x_init, d=d):
                front.move(step_length, d)
                _, value, gradient = front.evaluate()
                front.restore(x_init)
                return value, gradient

            def along(gradient, d=d):
                return float(dot(gradient, d))

            loss, flat_grad, t, ls_func_evals = strong_wolfe(
                evaluate_at, along, t, d, loss, flat_grad, float(gtd), kernels.max_abs_scaled(d, one),
                tolerance_change, max_eval - current_evals)
            front.move(t, d)                                                          # (9)
            opt_cond = kernels.max_abs_scaled(flat_grad, one) <= tolerance_grad
        else:
            front.move(t, d)                                                          # (9)
            if n_iter != max_iter:  # no evaluation after the last iteration, as torch
                _, loss, flat_grad = front.evaluate()
                opt_cond = kernels.max_abs_scaled(flat_grad, one) <= tolerance_grad
                ls_func_evals = 1
        current_evals += ls_func_evals
        func_evals += ls_func_evals

        if n_iter == max_iter or current_evals >= max_eval or opt_cond:              # (11)
            break
        if kernels.max_abs_scaled(d, cast(t)) <= tolerance_change:                    # (11) no progress
            break
        if abs(loss - prev_loss) < tolerance_change:                                  # (11)
            break

    state.update(func_evals=func_evals, n_iter=total_iter, d=d, t=float(t) if t is not None else None, old_dirs=old_dirs, old_stps=old_stps,
                 ro=ro, H_diag=H_diag, prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
    if al is not None:
        state["al"] = al
    return orig_loss


# --------------------------------------------------------------------------------------------
# The NumPy front end
# --------------------------------------------------------------------------------------------
class _Arrays(Front):
    """:class:`Front` over NumPy arrays: the closure returns ``(loss, grads)``."""

    def __init__(self, params: list[np.ndarray], closure: Callable, kernels) -> None:
        super().__init__(params, [flat_view(p) for p in params], closure, kernels)

    def evaluate(self) -> tuple[Any, float, np.ndarray]:
        result = self.closure()
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"closure must return a tuple (loss, grads), got {type(result).__name__}")
        loss, grads = result
        value = _loss_value(loss)
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(f"closure must return grads as a list of arrays, got {type(grads).__name__}")
        if len(grads) != len(self.params):
            raise ValueError(f"closure returned {len(grads)} grads for {len(self.params)} params")
        checked = [check_grad(i, g, p) for i, (g, p) in enumerate(zip(grads, self.params))]
        flat_grad = np.zeros(self.offsets[-1], self.dtype)  # a missing gradient is zero, as torch
        for i, grad in enumerate(checked):
            if grad is not None:
                flat_grad[self.offsets[i]:self.offsets[i + 1]] = grad
        return value, value, flat_grad


def _loss_value(loss: object) -> float:
    """The closure's loss as a float: a real number or a one-element array (as torch's ``float``)."""
    if isinstance(loss, np.ndarray) and loss.size == 1 and loss.dtype.kind in "fiu":
        return float(loss.reshape(()))
    if isinstance(loss, (bool, np.bool_)) or not isinstance(loss, numbers.Real):
        raise TypeError(f"the loss the closure returns must be a real number, got {type(loss).__name__} {loss!r}")
    return float(loss)


class LBFGS:
    """L-BFGS (maths in :mod:`fastopt.lbfgs`), torch.optim.LBFGS's algorithm on NumPy arrays.

    Parameters
    ----------
    params : list of ndarray
        The arrays to optimize: float32 or float64 (all the same), C-contiguous, writeable, any
        shape. L-BFGS sees them as one flat vector; there is one parameter group (a list holding
        one dict ``{"params": [...], ...}`` is accepted, as in torch).
    lr : float, default 1
        The step length tried first (12): the fixed step without a line search.
    max_iter : int, default 20
        Iterations per ``step``.
    max_eval : int or None, default None
        Closure calls per ``step``; None is ``max_iter * 5 // 4``, as torch.
    tolerance_grad : float, default 1e-7
        Stop when the largest gradient element is at most this (11).
    tolerance_change : float, default 1e-9
        Stop when the step, the loss change or the directional derivative is below this (10), (11).
    history_size : int, default 100
        Pairs ``(s, y)`` kept (``m``).
    line_search_fn : None or "strong_wolfe"
        None takes the fixed step ``t``; ``"strong_wolfe"`` searches for one (see the module).
    backend : {"auto", "reference", "numba", "cython"}
        Which twin of the vector kernels runs; all give the same bits.

    ``step(closure)`` takes a callable of no argument returning ``(loss, grads)``: the loss at the
    parameters' current values and one gradient per parameter (an array of its shape and dtype, or
    None for zero). It returns the loss of the first evaluation. The state (``opt.state[0]``) has
    torch's keys and layout: ``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``,
    ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``.
    """

    name = "lbfgs"  # the folder
    control_flow = "_run"  # what `python -m fastopt show lbfgs` shows: the control flow ...
    shown_kernel = "add_scaled_then_dot"  # ... and, side by side, the kernel of the two-loop recursion

    def __init__(self, params: Iterable, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None, backend: str = "auto") -> None:
        params = _check_params(params)
        if isinstance(params, dict):
            group = dict(params)
            arrays = group.pop("params")
        else:
            group, arrays = {}, params
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        unknown = sorted(set(group) - set(defaults))
        if unknown:
            raise ValueError(f"params: unknown hyperparameter {unknown[0]!r} in the parameter group")
        group = {**defaults, **group}
        group["max_eval"] = default_max_eval(group["max_iter"], group["max_eval"])
        check_hyperparameters(group)
        self.backend = _backends.resolve_backend(backend)
        self._kernels = _backends._load_module("lbfgs", self.backend)
        self._lock = threading.RLock()  # one step (or checkpoint) at a time: _threads.one_at_a_time
        self.defaults = defaults
        self.param_groups = [{"params": arrays, **group}]
        self.state: dict[int, dict[str, Any]] = {}

    @property
    def params(self) -> list[np.ndarray]:
        return self.param_groups[0]["params"]

    @one_at_a_time
    def step(self, closure: Callable[[], tuple[Any, list]]) -> Any:
        """Up to ``max_iter`` iterations (see the class); returns the closure's first loss."""
        if not callable(closure):
            raise TypeError(f"closure must be callable (returning (loss, grads)), got {type(closure).__name__}")
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        group = self.param_groups[0]
        check_hyperparameters(group)
        _check_params(group["params"])
        state = dict(self.state.get(0, {}))
        _check_state(state, group["params"], group["history_size"])
        loss = lbfgs_step(_Arrays(group["params"], closure, self._kernels), self._kernels, group, state)
        self.state[0] = state
        return loss

    @one_at_a_time
    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{"state": {0: {...}}, "param_groups": [{..., "params": [0, 1, ...]}]}``;
        arrays are copied."""
        group = self.param_groups[0]
        return {
            "state": {index: _copy_state(entry) for index, entry in self.state.items()},
            "param_groups": [{**{k: v for k, v in group.items() if k != "params"},
                              "params": list(range(len(group["params"])))}],
        }

    @one_at_a_time
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict` (of any backend): checked whole, then copied in."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict must be a dict with the keys 'state' and 'param_groups'")
        groups = state_dict["param_groups"]
        if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
            raise ValueError("state_dict['param_groups'] must hold one group: LBFGS has one")
        params = self.param_groups[0]["params"]
        if groups[0].get("params") != list(range(len(params))):
            raise ValueError(f"state_dict['param_groups'][0]['params'] must be {list(range(len(params)))}, "
                             f"the indices of this optimizer's {len(params)} params")
        group = {**{k: v for k, v in groups[0].items() if k != "params"}, "params": params}
        missing = sorted(set(self.defaults) - set(group))
        if missing:
            raise ValueError(f"state_dict['param_groups'][0] lacks {missing[0]!r}")
        check_hyperparameters(group)
        saved = state_dict["state"]
        if not isinstance(saved, dict) or set(saved) - {0}:
            raise ValueError("state_dict['state'] must be empty or hold index 0 (LBFGS keeps its state there)")
        state = _copy_state(saved[0]) if 0 in saved else None
        if state is not None:
            if not isinstance(saved[0], dict):
                raise ValueError("state_dict['state'][0] must be a dict")
            _check_state(state, params, group["history_size"])
        self.param_groups[0] = group
        self.state = {} if state is None else {0: state}

    def __repr__(self) -> str:
        group = self.param_groups[0]
        options = ", ".join(f"{k}={group[k]!r}" for k in self.defaults)
        return f"LBFGS({options}, backend={self.backend!r})"


def _check_params(params: object) -> list[np.ndarray] | dict:
    """One group of float32/float64 arrays of one dtype, none overlapping another."""
    if isinstance(params, np.ndarray):
        raise TypeError("params must be an iterable of arrays (a list), not one array")
    if isinstance(params, dict):
        raise TypeError("params must be an iterable of arrays or of one dict, not a dict")
    params = list(params)
    if not params:
        raise ValueError("params is an empty list: LBFGS needs at least one array")
    if any(isinstance(p, dict) for p in params):
        if len(params) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        group = params[0]
        if "params" not in group:
            raise ValueError("params: the parameter group has no 'params' key")
        arrays = _check_params(group["params"])
        return {**group, "params": arrays}
    for i, p in enumerate(params):
        check_param(f"params[{i}]", p)
        if p.dtype not in SUPPORTED_DTYPES:  # its dot products and line search are in the arrays' dtype
            raise TypeError(f"params[{i}] has dtype {p.dtype}; LBFGS steps float32 and float64 arrays only "
                            "(keep float32 master weights and step those)")
        if p.dtype != params[0].dtype:
            raise TypeError(f"params[{i}] has dtype {p.dtype} but params[0] has dtype {params[0].dtype}: "
                            "L-BFGS steps them as one vector of one dtype")
    extents = sorted((*memory_extent(p), i) for i, p in enumerate(params) if p.size)
    for (_, end, i), (start, _, j) in zip(extents, extents[1:]):
        if start < end:
            raise ValueError(f"params[{min(i, j)}] and params[{max(i, j)}] share memory")
    return params


def _check_state(state: dict[str, Any], params: list[np.ndarray], history_size: int) -> None:
    """The state as :func:`lbfgs_step` leaves it (edited or loaded): keys, counters, vectors of the
    flat length and the params' dtype, history lists of one length."""
    if not state:
        return
    unknown = sorted(set(state) - set(STATE_KEYS))
    if unknown:
        raise ValueError(f"state has an unknown key {unknown[0]!r}; LBFGS's are {', '.join(STATE_KEYS)}")
    for key in ("func_evals", "n_iter"):
        value = state.get(key, 0)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"state[{key!r}] must be a non-negative integer, got {value!r}")
    if state.get("n_iter", 0) == 0:
        return
    n, dtype = sum(p.size for p in params), params[0].dtype

    def vector(where: str, value: object) -> None:
        if not isinstance(value, np.ndarray) or value.dtype != dtype or value.shape != (n,) \
                or not value.flags.c_contiguous:
            described = f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"{where} must be a contiguous {dtype} array of shape ({n},), got {described}")

    for key in ("d", "prev_flat_grad"):
        if key not in state:
            raise ValueError(f"state lacks {key!r} after n_iter = {state['n_iter']}")
        vector(f"state[{key!r}]", state[key])
    for key in ("t", "prev_loss"):
        check_real(f"state[{key!r}]", state.get(key))
    lists = [state.get(key) for key in ("old_dirs", "old_stps", "ro")]
    if not all(isinstance(v, list) for v in lists) or len({len(v) for v in lists}) != 1 or len(lists[0]) > history_size:
        raise ValueError(f"state['old_dirs'], ['old_stps'] and ['ro'] must be lists of one length, at most "
                         f"history_size = {history_size}")
    for key in ("old_dirs", "old_stps"):
        for i, value in enumerate(state[key]):
            vector(f"state[{key!r}][{i}]", value)
    for key, values in (("ro", state["ro"]), ("al", [v for v in state.get("al") or [] if v is not None])):
        for i, value in enumerate(values):
            check_real(f"state[{key!r}][{i}]", value)
    check_real("state['H_diag']", state.get("H_diag"))
    if "al" in state and not isinstance(state["al"], list):
        raise ValueError("state['al'] must be a list")
    # scalars held in the params' dtype, as the step leaves them
    cast = dtype.type
    state["ro"] = [cast(v) for v in state["ro"]]
    state["al"] = [None if v is None else cast(v) for v in state["al"]] if "al" in state else state.get("al")
    if "al" not in state or state["al"] is None:
        state.pop("al", None)
    if not isinstance(state["H_diag"], int):
        state["H_diag"] = cast(state["H_diag"])


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    def copy(value):
        if isinstance(value, np.ndarray):
            return value.copy()
        if isinstance(value, list):
            return [copy(v) for v in value]
        return value

    return {key: copy(value) for key, value in state.items()} if isinstance(state, dict) else state
