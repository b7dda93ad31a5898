"""Drop-in ``torch.optim`` optimizers that step CPU tensors through fastopt's kernels.

``fastopt.torch.SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``, ``Adadelta``, ``Adamax``,
``NAdam``, ``RAdam``, ``Rprop``, ``ASGD`` and ``SparseAdam`` subclass ``torch.optim.Optimizer`` with torch's
signatures, defaults, validation messages, parameter groups, ``closure``, ``zero_grad``, hooks,
learning-rate schedulers and ``state_dict`` layout, so a state dict saved from ``torch.optim.Adam`` loads here
and the other way round; ``fastopt.torch.Lion`` does the same with lion-pytorch's ``Lion``,
``fastopt.torch.AdaBelief`` with the authors' package's (adabelief-pytorch), ``fastopt.torch.ADOPT``
with the authors' torch-adopt, and ``fastopt.torch.ScheduleFreeAdamW`` with the authors'
``schedulefree.AdamWScheduleFree`` (its ``train()`` and ``eval()`` included); ``fastopt.torch.LAMB``
is optax's ``lamb`` with a torch.optim-style signature (torch.optim has none); ``fastopt.torch.Muon``
is ``torch.optim.Muon`` with Newton-Schulz in the parameters' dtype (torch's runs in bfloat16);
``fastopt.torch.LBFGS`` is torch.optim.LBFGS (``step(closure)``, its state under the first
parameter), stepped by fastopt's L-BFGS (``_lbfgs.py``; not the step engine below, which L-BFGS's
closure loop does not use)::

    import fastopt.torch
    opt = fastopt.torch.Adam(model.parameters(), lr=1e-3)    # where torch.optim.Adam was
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

``import fastopt`` never imports torch; this package does (``pip install "fastopt[torch]"``).
Its ``import torch`` gets the real torch: Python 3 imports are absolute, so the only way to shadow
torch with this package would be to put the ``fastopt/`` folder itself on ``sys.path`` (running a
script from inside it); that is detected and explained below. The package holds the optimizers
(here), the front end they share (``_front.py``: fastopt's step engine driven with tensors) and
what it checks and reads on tensors (``_tensors.py``).

How a step runs (nothing here does arithmetic of its own)
---------------------------------------------------------
This module is a front end of fastopt's step engine (``fastopt._engine``), as
``fastopt.Optimizer`` is for NumPy arrays. The hyperparameters of each group are checked with
torch's conditions and messages (again only when one of them changed, value *or type*),
translated to fastopt's names (RMSprop's ``alpha`` is fastopt's ``rho``; Adam with
``decoupled_weight_decay=True`` is fastopt's AdamW) and stepped by the same
``Algorithm`` as the NumPy class (``fastopt.adam.AdamAlgorithm`` ...),
which computes every derived scalar once in float64 and casts it to the tensors' dtype. So the
result is the one ``fastopt.Adam`` computes on the same NumPy arrays, bit for bit, and agrees
with ``torch.optim`` (for-loop) to a few ulp.

The fast path: one C call per group
-----------------------------------
With the Cython or Numba backend (``backend="auto"`` picks Cython where it is built) and a torch
that publishes the DLPack C exchange API (``torch.Tensor.__dlpack_c_exchange_api__``, torch 2.10
and later), a step is one ``fastopt._native.batch.Batch.gather_tensors`` call and one multi-tensor
kernel call per parameter group. The gather reads each parameter's ``.grad`` and describes each
parameter and gradient with one C call (data pointer, device, dtype, shape, strides: no NumPy
view, no Python method call), checks everything (CPU, float32/float64 like the group, contiguous,
sizes, no overlap between anything the kernel writes), and the kernel then steps every tensor
**in place, where it is**: gradients are read where autograd left them, whether they are kept
between steps (``zero_grad(set_to_none=False)``) or new each step (the default), and no tensor is
copied, moved or re-viewed. Parameters and gradients are checked again at every step, so
``p.data = ...``, ``model.to(...)`` or ZeroRedundancyOptimizer's bucket views are simply followed.

The state tensors fastopt.torch creates (and those a loaded state dict brings, which it copies)
are ``torch.from_numpy`` views of 64-byte aligned NumPy arrays it owns; the gather recognises
them by identity and checks their arrays with NumPy's C API, without calling torch. A state
tensor you assign (``optimizer.state[p]["exp_avg"] = t``) is used where it is and described at
every step like a gradient. In-place changes of a state tensor's values (``copy_``, ``mul_``,
``fill_``) are seen; swapping the storage of a tensor fastopt created (``t.data = ...``,
``t.set_(...)``) is not: the step keeps reading and writing fastopt's memory (which the swap
cannot free). Assign a new tensor instead.

Anything the gather will not vouch for (a first step, which creates the state; a non-contiguous
gradient; parameters at different step counts; an invalid tensor, to be reported) makes the whole
step take the careful path instead, tensor by tensor through cached NumPy views, which is also the
path of the reference backend (and of Numba's for a group with a tensor large enough to be split
across threads).

What is rejected, before anything is updated (a rejected ``step`` changes nothing)
-------------------------------------------------------------------------------------
* non-CPU tensors (CUDA, MPS, meta, ...): fastopt's kernels run on the CPU's memory;
* dtypes other than float32 and float64 (float16, bfloat16, complex, integers);
* non-contiguous parameters (the kernels update memory in place and never copy a parameter);
* sparse gradients, except for ``SparseAdam``, which takes only those (torch's SGD and Adagrad
  take them too; fastopt's do not);
* state tensors that do not fit their parameter (dtype, size, layout, shared memory);
* ``capturable=True`` and ``differentiable=True`` (CUDA graphs and autograd through the step).

A non-contiguous *gradient* is fine: it is read through a contiguous copy. ``foreach`` and
``fused`` are accepted and stored (fastopt's path is used whatever they say).

State
-----
torch's key names and shapes (``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, ``sum``,
``square_avg``, ``momentum_buffer``, ``grad_avg``, ``acc_delta``, ``exp_inf``, ``mu_product``,
``prev``, ``step_size``, ``eta``, ``mu``, ``ax``; AdaBelief's ``exp_avg_var``, ``max_exp_avg_var``; ADOPT's
``exp_avg``, ``exp_avg_sq``; ScheduleFreeAdamW's ``z``, with its counters ``k``, ``weight_sum``,
``lr_max``, ``train_mode`` and ``scheduled_lr`` in the parameter groups, as in the authors' package).
``step`` is a 0-d **float64** tensor: torch uses float32, which stops counting at 2**24 steps;
torch's for-loop path reads ``step`` with ``.item()``, so it loads and continues a fastopt state
dict, and a float32 ``step`` loaded from torch is widened to float64 here. NAdam's
``mu_product`` and ASGD's ``eta`` and ``mu`` are 0-d float32 tensors, as in torch. Optional
buffers are created when an option needs them, also when it is switched on after the first step
(torch raises ``KeyError`` there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

if not hasattr(torch, "optim"):  # this very package was imported as "torch": fastopt/ is on sys.path
    raise ImportError(
        "`import torch` found fastopt/torch/ instead of PyTorch: the fastopt/ folder itself is on "
        "sys.path (a script run from inside it?). Run from elsewhere, or use `python -m`."
    )

import fastopt
from fastopt import schedule_free_adamw as _schedule_free
from fastopt._memory import aligned_full
from fastopt._threads import one_at_a_time
from fastopt._validation import check_flag, check_real

from ._front import _FastoptOptimizer
from ._lbfgs import LBFGS
from ._tensors import as_float, check_param, fast_path_available, group_betas, memory_order, numpy_view

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "Adamax", "NAdam", "RAdam", "Lion", "Rprop", "ASGD",
    "SparseAdam", "AdaBelief", "Adafactor", "ADOPT", "ScheduleFreeAdamW", "LAMB", "Muon", "LBFGS",
]

_fast_path_available = fast_path_available  # for the tests: is the multi-tensor gather usable here?


# --------------------------------------------------------------------------------------------
# The optimizers of torch.optim
# --------------------------------------------------------------------------------------------
def _defaults(arguments: dict[str, Any]) -> dict[str, Any]:
    """A constructor's hyperparameters from its ``locals()`` (every argument but ``params`` and
    ``backend``), in the signature's order: torch's ``defaults``."""
    return {key: value for key, value in arguments.items() if key not in ("self", "params", "backend", "__class__")}


class SGD(_FastoptOptimizer):
    """``torch.optim.SGD`` stepped by fastopt's SGD kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-3``), plus keyword-only ``backend`` (fastopt's
    ``"auto" | "reference" | "numba" | "cython"``).
    State: ``momentum_buffer`` (with momentum), as in torch.
    """

    _algorithm = fastopt.SGD.algorithm
    _hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)

    def _sparse_gradient(self, where, grad, param, plan):
        """torch.optim.SGD's sparse gradients: without momentum, only the rows the gradient names
        move; with momentum, torch keeps a sparse buffer of every row ever named and decays it
        at each step, which is what a dense buffer stepped by the dense gradient computes (so
        fastopt's buffer is dense where torch's is sparse). Weight decay is refused (torch's own
        step fails on it: ``add(sparse, dense) is not supported``)."""
        group = plan.group
        if group["weight_decay"] != 0:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")
        if group["momentum"] == 0:
            return self._sparse_rows(where, grad, param)
        return grad.to_dense()


class Adagrad(_FastoptOptimizer):
    """``torch.optim.Adagrad`` stepped by fastopt's Adagrad kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-2``, ``eps=1e-10``), plus ``backend``. As in
    torch, ``step`` and ``sum`` exist from the constructor on, and a group added later starts its
    ``sum`` from the constructor's ``initial_accumulator_value``.
    """

    _algorithm = fastopt.Adagrad.algorithm
    _hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)
        for group in self.param_groups:  # torch creates Adagrad's state eagerly
            for p in group["params"]:
                self.state[p]["step"] = self._own(aligned_full((), np.float64, 0.0))
                self.state[p]["sum"] = self._new_buffer(p, self.defaults["initial_accumulator_value"])

    def _initial_value(self, key, algorithm, group):
        return self.defaults["initial_accumulator_value"]  # torch's rule, for a group added later

    def _sparse_gradient(self, where, grad, param, plan):
        """torch.optim.Adagrad's sparse gradients: the rows they name are stepped (their ``sum``
        and values), the others left as they are; weight decay is refused, with torch's message."""
        if plan.group["weight_decay"] != 0:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")
        return self._sparse_rows(where, grad, param)


class RMSprop(_FastoptOptimizer):
    """``torch.optim.RMSprop`` stepped by fastopt's RMSprop kernel; see :mod:`fastopt.torch`.

    torch's names and defaults: ``lr=1e-2`` and ``alpha=0.99`` (fastopt's ``rho``), and torch's
    validation, which accepts any ``alpha >= 0`` (``fastopt.RMSprop`` wants ``0 <= rho < 1``).
    Plus ``backend``.
    """

    _algorithm = fastopt.RMSprop.algorithm
    _hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False, *, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)

    def _fastopt(self, group):
        from fastopt._validation import check_eps, check_lr, check_momentum, check_weight_decay

        lr = as_float("lr", group["lr"])
        check_lr(lr)  # torch's order: lr, eps, momentum, weight_decay, alpha
        check_eps(group["eps"])
        check_momentum(group["momentum"])
        check_weight_decay(group["weight_decay"])
        check_real("alpha", group["alpha"])
        if not 0.0 <= group["alpha"]:
            raise ValueError(f"Invalid alpha value: {group['alpha']}")
        check_flag("centered", group["centered"])
        check_flag("maximize", group["maximize"])
        translated = dict(lr=lr, rho=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
                          momentum=group["momentum"], centered=group["centered"], maximize=group["maximize"],
                          **self._algorithm.flag_defaults)  # torch's arithmetic
        return self._algorithm, translated


class Adam(_FastoptOptimizer):
    """``torch.optim.Adam`` stepped by fastopt's Adam kernel (with its decoupled decay when
    ``decoupled_weight_decay=True``, which is torch's AdamW); see :mod:`fastopt.torch`.

    Same signature and defaults as torch, plus ``backend``.
    """

    _algorithm = fastopt.Adam.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)

    def _fastopt(self, group):
        betas = group_betas(group)
        translated = dict(lr=as_float("lr", group["lr"]), betas=betas, eps=group["eps"],
                          weight_decay=as_float("weight_decay", group["weight_decay"]),
                          amsgrad=group["amsgrad"], maximize=group["maximize"],
                          **self._algorithm.flag_defaults)  # torch's arithmetic
        self._algorithm.check(translated)
        if isinstance(betas, (tuple, list)) and not all(isinstance(b, float) for b in betas):
            raise ValueError("betas must be either both floats or both Tensors")
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])
        translated["decoupled_weight_decay"] = bool(group["decoupled_weight_decay"])
        return self._algorithm, translated


class AdamW(Adam):
    """``torch.optim.AdamW`` (Adam with ``decoupled_weight_decay=True``, ``weight_decay=1e-2``),
    stepped by fastopt's Adam kernel with its decoupled decay; see :mod:`fastopt.torch`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
                 backend="auto"):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True, backend=backend)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # as torch: AdamW is always decoupled
            group["decoupled_weight_decay"] = True


class Adadelta(_FastoptOptimizer):
    """``torch.optim.Adadelta`` stepped by fastopt's Adadelta kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1.0``, ``rho=0.9``, ``eps=1e-6``; ``rho=1`` is
    accepted, as in torch), plus ``backend``. State: ``step``, ``square_avg``, ``acc_delta``.
    """

    _algorithm = fastopt.Adadelta.algorithm
    _hyperparameters = ("lr", "rho", "eps", "weight_decay", "maximize")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class Adamax(_FastoptOptimizer):
    """``torch.optim.Adamax`` stepped by fastopt's Adamax kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=2e-3``), plus ``backend``.
    State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    _algorithm = fastopt.Adamax.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "maximize")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class NAdam(_FastoptOptimizer):
    """``torch.optim.NAdam`` stepped by fastopt's NAdam kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=2e-3``, ``momentum_decay=4e-3``,
    ``decoupled_weight_decay``), plus ``backend``. State: ``step``, ``exp_avg``, ``exp_avg_sq``
    and ``mu_product``, a 0-d float32 tensor as in torch (torch's ``load_state_dict`` casts it to
    a float64 parameter's dtype; fastopt keeps it float32, loading either).
    """

    _algorithm = fastopt.NAdam.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class RAdam(_FastoptOptimizer):
    """``torch.optim.RAdam`` stepped by fastopt's RAdam kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``decoupled_weight_decay``), plus ``backend``.
    State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    _algorithm = fastopt.RAdam.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class Rprop(_FastoptOptimizer):
    """``torch.optim.Rprop`` stepped by fastopt's Rprop kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-2``, ``etas=(0.5, 1.2)``,
    ``step_sizes=(1e-6, 50)``), plus ``backend``; the same bits as torch's for-loop path. torch's
    checks and messages, plus those of ``step_sizes`` (``0 <= min <= max``), which torch does not
    check. State: ``step``, ``prev`` and ``step_size`` (filled with ``lr`` at the first step).
    """

    _algorithm = fastopt.Rprop.algorithm
    _hyperparameters = ("lr", "etas", "step_sizes", "maximize")

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False,
                 foreach=None, maximize=False, differentiable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class ASGD(_FastoptOptimizer):
    """``torch.optim.ASGD`` stepped by fastopt's ASGD kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-2``, ``lambd=1e-4``, ``alpha=0.75``,
    ``t0=1e6``), plus ``backend``. State: ``step``, ``eta``, ``mu`` (0-d float32 tensors, as in
    torch; fastopt keeps them float32 when torch's ``load_state_dict`` has cast them to a float64
    parameter's dtype) and ``ax``, the average of the iterates.
    """

    _algorithm = fastopt.ASGD.algorithm
    _hyperparameters = ("lr", "lambd", "alpha", "t0", "weight_decay", "maximize")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False, *, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class Adafactor(_FastoptOptimizer):
    """``torch.optim.Adafactor`` stepped by fastopt's Adafactor kernel; see :mod:`fastopt.torch`
    and :mod:`fastopt.adafactor`.

    Same signature and defaults as torch (``lr=1e-2``, ``beta2_decay=-0.8``,
    ``eps=(None, 1e-3)``, ``d=1.0``, ``weight_decay=0.0``), plus ``backend``; torch's checks and
    messages. State: ``step``, then ``row_var`` and ``col_var`` for a parameter of 2 or more
    dimensions (torch's shapes: the last, or the next-to-last, dimension 1) or ``variance``. Each
    parameter is one kernel call on one thread; its sums follow :mod:`fastopt._sums` (float64
    relative agreement with torch about 1e-15).
    """

    _algorithm = fastopt.Adafactor.algorithm
    _hyperparameters = ("lr", "beta2_decay", "eps", "d", "weight_decay", "maximize")

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class LAMB(_FastoptOptimizer):
    """LAMB (optax's ``lamb``; torch.optim has none) stepped by fastopt's LAMB kernel; see
    :mod:`fastopt.torch` and :mod:`fastopt.lamb`.

    A torch.optim-style signature with optax's hyperparameters and defaults: ``lr=1e-3`` (optax
    has no default), ``betas=(0.9, 0.999)`` (optax's ``b1``, ``b2``), ``eps=1e-6``,
    ``weight_decay=0.0`` (``lambda * theta`` added to the update before the trust ratio), then
    keyword-only ``eps_root=0.0`` (optax's), ``maximize`` and ``backend``; torch.optim's Adam
    checks and messages (and ``eps_root >= 0``). State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    Each parameter is one kernel call on one thread; its trust ratio's norms follow
    :mod:`fastopt._sums` (float64 relative agreement with optax about 1e-15).
    """

    _algorithm = fastopt.LAMB.algorithm
    _hyperparameters = ("lr", "betas", "eps", "eps_root", "weight_decay", "maximize")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, *, eps_root=0.0,
                 maximize=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class Muon(_FastoptOptimizer):
    """``torch.optim.Muon`` stepped by fastopt's Muon kernel; see :mod:`fastopt.torch` and
    :mod:`fastopt.muon`.

    Same signature and defaults as torch (``lr=1e-3``, ``weight_decay=0.1``, ``momentum=0.95``,
    ``nesterov=True``, ``ns_coefficients=(3.4445, -4.7750, 2.0315)``, ``eps=1e-7``,
    ``ns_steps=5``, ``adjust_lr_fn=None``), plus keyword-only ``backend``; torch's checks and
    messages, and 2-D parameters only (refused when registered, as torch). State:
    ``momentum_buffer`` only, torch's layout, so state dicts move both ways. One difference:
    torch runs Newton-Schulz in bfloat16, fastopt in the parameter's dtype (float64 agrees with
    torch's algorithm without the cast to about 1e-15); each parameter is one kernel call on one
    thread, its matrix products in :mod:`fastopt._sums`' order.
    """

    _algorithm = fastopt.Muon.algorithm
    _hyperparameters = ("lr", "weight_decay", "momentum", "nesterov", "ns_coefficients", "eps", "ns_steps",
                        "adjust_lr_fn")

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None, *,
                 backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class SparseAdam(_FastoptOptimizer):
    """``torch.optim.SparseAdam`` stepped by fastopt's SparseAdam kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``), plus
    ``backend``. Gradients must be sparse COO tensors (``nn.Embedding(..., sparse=True)``), as in
    torch; only the rows they name are stepped (:mod:`fastopt.sparse_adam`). State: ``step``,
    ``exp_avg``, ``exp_avg_sq``.
    """

    _algorithm = fastopt.SparseAdam.algorithm
    _hyperparameters = ("lr", "betas", "eps", "maximize")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False, *, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


# --------------------------------------------------------------------------------------------
# lion-pytorch's Lion
# --------------------------------------------------------------------------------------------
class Lion(_FastoptOptimizer):
    """``lion_pytorch.Lion`` stepped by fastopt's Lion kernel; see :mod:`fastopt.torch`.

    lion-pytorch's signature and defaults: ``lr=1e-4``, ``betas=(0.9, 0.99)``,
    ``weight_decay=0.0``, ``use_triton=False`` (True is refused: Triton kernels run on GPUs) and
    ``decoupled_weight_decay=False`` (True divides ``weight_decay`` by the constructor's ``lr``,
    as lion-pytorch does, so the decay per step follows the schedule but not the size of ``lr``).
    Plus keyword-only ``maximize`` and ``backend``. State: ``exp_avg`` only, as lion-pytorch (no
    step counter); its state dicts load here and the other way round.

    Validation is fastopt's, with torch.optim's messages: ``lr >= 0`` and betas in ``[0, 1)``,
    where lion-pytorch asserts ``lr > 0`` and betas in ``[0, 1]``.
    """

    _algorithm = fastopt.Lion.algorithm
    _hyperparameters = ("lr", "betas", "weight_decay", "maximize")
    _pickled = ("backend", "_init_lr", "decoupled_wd")

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, use_triton=False,
                 decoupled_weight_decay=False, *, maximize=False, backend="auto"):
        check_flag("use_triton", use_triton)
        if use_triton:
            raise ValueError("use_triton=True is not supported by fastopt.torch (Triton kernels run on GPUs)")
        check_flag("decoupled_weight_decay", decoupled_weight_decay)
        self._init_lr = as_float("lr", lr)  # lion-pytorch's names for these two
        self.decoupled_wd = decoupled_weight_decay
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, backend)

    def _fastopt(self, group):
        algorithm, translated = super()._fastopt(group)
        if self.decoupled_wd:
            if not self._init_lr > 0:
                raise ValueError("decoupled_weight_decay=True divides weight_decay by the initial lr, which must be > 0")
            translated["weight_decay"] = translated["weight_decay"] / self._init_lr
        return algorithm, translated

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("_init_lr", self.defaults["lr"])
        self.__dict__.setdefault("decoupled_wd", False)


# --------------------------------------------------------------------------------------------
# The authors' AdaBelief (adabelief-pytorch)
# --------------------------------------------------------------------------------------------
class AdaBelief(_FastoptOptimizer):
    """``adabelief_pytorch.AdaBelief`` stepped by fastopt's AdaBelief kernel; see
    :mod:`fastopt.torch` and :mod:`fastopt.adabelief`.

    The authors' signature (adabelief-pytorch 0.2.1): ``lr=1e-3``, ``betas=(0.9, 0.999)``,
    ``eps=1e-16`` (added to ``s_t`` and to its root, as there: fastopt's ``eps_root = eps``),
    ``weight_decay=0``, ``amsgrad=False``, ``weight_decouple=True`` (decay the weights by
    ``1 - lr * weight_decay`` before the step, AdamW-style; False adds an L2 term to the
    gradient), ``fixed_decay=False`` (True: decay by ``1 - weight_decay`` whatever ``lr``),
    ``rectify``, ``degenerated_to_sgd=True`` and ``print_change_log``, plus keyword-only
    ``maximize`` and ``backend``. Differences:

    * ``rectify`` defaults to **False** (the package's default is True, RAdam's rectification
      with SGD steps while it is off): True is refused with an error naming it.
      ``degenerated_to_sgd`` acts only with ``rectify`` and is accepted and unused.
      ``print_change_log`` is accepted and nothing is printed.
    * The gradient is left as it is (the package adds the L2 term to ``p.grad`` in place).
    * ``step`` is a 0-d float64 tensor (the package keeps a Python int; either loads here, and a
      state dict saved here loads there); the groups hold no ``buffer`` (the package's cache of
      rectification terms).

    State: ``step``, ``exp_avg``, ``exp_avg_var`` (``s_t``, ``eps`` included) and
    ``max_exp_avg_var`` (AMSGrad), the package's names. The arithmetic is fastopt's
    (:mod:`fastopt.adabelief`, optax's order): a few ulp from the package's.
    """

    _algorithm = fastopt.AdaBelief.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
    _pickled = ("backend", "weight_decouple", "fixed_decay", "rectify", "degenerated_to_sgd")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0, amsgrad=False,
                 weight_decouple=True, fixed_decay=False, rectify=False, degenerated_to_sgd=True,
                 print_change_log=True, *, maximize=False, backend="auto"):
        for name, value in (("weight_decouple", weight_decouple), ("fixed_decay", fixed_decay), ("rectify", rectify),
                            ("degenerated_to_sgd", degenerated_to_sgd), ("print_change_log", print_change_log)):
            check_flag(name, value)
        if rectify:
            raise ValueError("rectify=True (RAdam's rectification, adabelief-pytorch's default) is not supported by "
                             "fastopt.torch.AdaBelief: pass rectify=False")
        # the package's attributes, not group entries
        self.weight_decouple, self.fixed_decay = weight_decouple, fixed_decay
        self.rectify, self.degenerated_to_sgd = rectify, degenerated_to_sgd
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults, backend)

    def _fastopt(self, group):
        algorithm = self._algorithm
        translated = {key: group_betas(group) if key == "betas" else as_float(key, group[key])
                      for key in self._hyperparameters}
        # the package's one eps goes in both places (fastopt's eps_root and eps)
        translated.update(eps_root=translated["eps"], decoupled_weight_decay=self.weight_decouple,
                          fixed_decay=self.fixed_decay)
        algorithm.check(translated)
        return algorithm, translated

    def __setstate__(self, state):
        super().__setstate__(state)
        for name, default in (("weight_decouple", True), ("fixed_decay", False), ("rectify", False),
                              ("degenerated_to_sgd", True)):
            self.__dict__.setdefault(name, default)


# --------------------------------------------------------------------------------------------
# The authors' ADOPT (torch-adopt)
# --------------------------------------------------------------------------------------------
class ADOPT(_FastoptOptimizer):
    """``adopt.ADOPT`` (the authors' torch-adopt) stepped by fastopt's ADOPT kernel; see
    :mod:`fastopt.torch` and :mod:`fastopt.adopt`.

    The authors' signature (torch-adopt 0.1.0): ``lr=1e-3``, ``betas=(0.9, 0.9999)``,
    ``eps=1e-6``, ``clip_lambda`` (the clipping value of the normalised gradient as a function
    of the steps already taken; default ``step**0.25``; None: no clipping), ``weight_decay=0``,
    ``decouple=False`` (an L2 term; True shrinks the weights by ``1 - lr * weight_decay`` before
    each step but the first), then keyword-only ``foreach``, ``maximize``, ``capturable``,
    ``differentiable``, ``fused`` and ``backend``. As in the package, ``clip_lambda`` is an
    attribute of the optimizer (``opt.clip_lambda``), not a group entry; assigning a new one takes
    effect at the next step. Differences:

    * The default ``clip_lambda`` is :func:`fastopt.adopt.quarter_power` (the package's is a
      ``lambda``, which cannot be pickled); it is called with the step count as an ``int`` (the
      package passes a float) and must return a real number ``>= 0``.
    * ``step`` is a 0-d float64 tensor (the package's is float32, which stops counting at 2**24).
    * ``capturable=True`` and ``differentiable=True`` are refused, ``fused=True`` is accepted (the
      package raises for it) and, like ``foreach``, only stored.

    State: ``step``, ``exp_avg``, ``exp_avg_sq``, the package's names; a state dict saved here
    loads there and the other way round. The arithmetic is fastopt's (:mod:`fastopt.adopt`,
    optax's order): a few ulp from the package's.
    """

    _algorithm = fastopt.ADOPT.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "decouple", "maximize")
    _pickled = ("backend", "clip_lambda")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.9999), eps=1e-6, clip_lambda=fastopt.adopt.quarter_power,
                 weight_decay=0.0, decouple=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, backend="auto"):
        fastopt.adopt.check_clip_lambda(clip_lambda)
        self.clip_lambda = clip_lambda  # the package's attribute, not a group entry
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decouple=decouple,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults, backend)

    def _fastopt(self, group):
        algorithm = self._algorithm
        translated = {key: group_betas(group) if key == "betas" else as_float(key, group[key])
                      for key in self._hyperparameters}
        translated["clip_lambda"] = self.clip_lambda
        algorithm.check(translated)
        return algorithm, translated

    def _plan(self, group):
        # the plans hold clip_lambda: make them again when another one is assigned
        if self.__dict__.get("_planned_clip_lambda", self) is not self.clip_lambda:
            self._validated.clear()
            self._planned_clip_lambda = self.clip_lambda
        return super()._plan(group)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("clip_lambda", fastopt.adopt.quarter_power)


# The authors' Schedule-Free AdamW (schedulefree)
# --------------------------------------------------------------------------------------------
class ScheduleFreeAdamW(_FastoptOptimizer):
    """``schedulefree.AdamWScheduleFree`` stepped by fastopt's Schedule-Free AdamW kernel; see
    :mod:`fastopt.torch` and :mod:`fastopt.schedule_free_adamw`.

    The authors' signature (schedulefree 1.4.1): ``lr=0.0025``, ``betas=(0.9, 0.999)``,
    ``eps=1e-8``, ``weight_decay=0``, ``warmup_steps=0``, ``r=0.0``, ``weight_lr_power=2.0``,
    ``foreach`` (accepted and stored; fastopt's path is used whatever it says), plus keyword-only
    ``maximize`` and ``backend``. As in the package, the optimizer starts in **eval mode**: call
    ``optimizer.train()`` before training steps (the parameters then hold ``y``) and
    ``optimizer.eval()`` before evaluating or saving the weights (they then hold ``x``, the
    average); ``step()`` in eval mode raises ``RuntimeError``.

    State: ``z`` and ``exp_avg_sq`` per parameter, and in each parameter group the package's
    counters ``k``, ``train_mode``, ``weight_sum``, ``lr_max`` and ``scheduled_lr``, in the
    package's order, so that state dicts load in either direction (the mode and the counters
    included). Differences: the gradient is left as it is (the package divides ``p.grad`` in
    place); ``step()`` refuses to run if any group is in eval mode (the package looks at the first
    group); ``beta1 = 0`` is refused (the package fails in ``eval()``). The arithmetic is the
    package's, operation for operation: a few ulp from it (torch contracts multiply-adds).
    """

    _algorithm = fastopt.ScheduleFreeAdamW.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "warmup_steps", "r", "weight_lr_power", "maximize")

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, warmup_steps=0, r=0.0,
                 weight_lr_power=2.0, foreach=hasattr(torch, "_foreach_mul_"), *, maximize=False, backend="auto"):
        # the package's defaults, in its order (its state dicts then have the same layout)
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, k=0, warmup_steps=warmup_steps, train_mode=False,
                        weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0, weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, foreach=foreach, maximize=maximize)
        super().__init__(params, defaults, backend)

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        _schedule_free.check_group_counters("param_group", group)

    def _check_mode_and_counters(self):
        for index, group in enumerate(self.param_groups):
            where = f"param_groups[{index}]"
            _schedule_free.check_group_counters(where, group)
            if not group["train_mode"]:
                raise RuntimeError(
                    f"{type(self).__name__}.step() called in eval mode ({where}['train_mode'] is False): "
                    "call optimizer.train() before training steps (the parameters then hold y) and "
                    "optimizer.eval() before evaluating (they then hold x, the average)"
                )

    @one_at_a_time
    @torch.no_grad()
    def step(self, closure=None, *, copy_to=None):
        """One update of every parameter that has a gradient (``y`` and its ``z``); returns
        ``closure()``'s loss. Raises ``RuntimeError`` in eval mode (before calling the closure,
        as the package). ``copy_to`` as in :meth:`fastopt.torch.Adam.step`."""
        self._check_mode_and_counters()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
            self._check_mode_and_counters()  # the closure may have edited the groups
        plans = [self._plan(group) for group in self.param_groups]
        for plan, group in zip(plans, self.param_groups):  # the step's key is computed from them
            plan.group.update(k=group["k"], weight_sum=group["weight_sum"], lr_max=group["lr_max"])
        try:
            if copy_to is not None:
                self._copies = self._check_copies(copy_to)
            self._engine.step(plans, self)
        finally:
            self._copies = None
        for plan, group in zip(plans, self.param_groups):  # applied whole: every group advances
            group.update(_schedule_free.advanced_counters(plan.group))
        return loss

    def prepare(self, plan, item):
        param, grad, buffers, counters, created = super().prepare(plan, item)
        if "z" in created:  # z_0 is the parameter (the package's clone)
            buffers[plan.slots.index("z")][...] = param
        return param, grad, buffers, counters, created

    @one_at_a_time
    @torch.no_grad()
    def train(self):
        """Switch every group in eval mode to train mode: each parameter with a ``z`` becomes
        ``y = lerp(x, z, 1 - beta1)`` (the package's ``train()``)."""
        self._switch(True)

    @one_at_a_time
    @torch.no_grad()
    def eval(self):
        """Switch every group in train mode to eval mode: each parameter with a ``z`` becomes
        ``x = lerp(y, z, 1 - 1/beta1)`` (the package's ``eval()``)."""
        self._switch(False)

    def _switch(self, train):
        """Everything checked first (mode flags, betas, each parameter and its ``z``), then every
        parameter switched, by the same NumPy expression whatever the backend."""
        work = []
        for group_index, group in enumerate(self.param_groups):
            where = f"param_groups[{group_index}]"
            check_flag(f"{where}['train_mode']", group.get("train_mode"))
            if group["train_mode"] == train:
                continue
            self._plan(group)  # the hyperparameters, checked (betas among them)
            weight = _schedule_free.switch_weight(group_betas(group)[0], train)
            for index, p in enumerate(group["params"]):
                state = self.state.get(p)
                if type(state) is not dict or "z" not in state:
                    continue
                param_where = f"{where}['params'][{index}]"
                check_param(param_where, p)
                self._check_state(param_where, p, state, ("z",), ())
                z = self._owned_array(state["z"])
                order = memory_order(p)  # both in p's memory order (z has p's layout)
                work.append((numpy_view(p, order), numpy_view(state["z"], order) if z is None else z.reshape(-1), weight))
            work.append(group)
        for item in work:
            if type(item) is dict:
                item["train_mode"] = train
            else:
                _schedule_free.interpolate(*item)

    @one_at_a_time
    def load_state_dict(self, state_dict):
        """torch's ``load_state_dict`` after fastopt's checks, the group counters and mode
        included (a checkpoint of the package loads here, and the other way round)."""
        for index, saved in enumerate(state_dict["param_groups"]):
            _schedule_free.check_group_counters(f"state_dict['param_groups'][{index}]", {**self.defaults, **saved})
        super().load_state_dict(state_dict)
