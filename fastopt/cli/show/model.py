"""What ``show`` shows about one optimizer: its parsed docstring and its three kernels.

Everything here is read from the package's files; nothing about the maths is written in ``show``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastopt import BACKENDS, CLOSURE_OPTIMIZERS, MATRIX_OPTIMIZERS
from fastopt import OPTIMIZERS as _VECTOR_OPTIMIZERS
from ._docstring import MathDoc, parse_math_doc, read_docstring
from ._source import Kernel, read_control, read_function, read_kernel, read_scalars

OPTIMIZERS = {**_VECTOR_OPTIMIZERS, **MATRIX_OPTIMIZERS}  # every class show explains (Muon's matrices included)


@dataclass
class OptimizerView:
    title: str  # the class name, "RMSprop"
    name: str  # the folder and kernel prefix, "rmsprop"
    package: str  # "fastopt.rmsprop"
    math: MathDoc
    kernels: list[Kernel]  # in BACKENDS order: reference, numba, cython
    scalars: Kernel  # the method that forms the kernels' scalars (bias corrections ...), once per step;
    # for a closure optimizer (L-BFGS), its control flow, which calls the kernels


def optimizer_names() -> list[str]:
    """The class names, in teaching order: SGD, Adagrad, RMSprop, Adam, AdamW ..., then the
    closure optimizers (LBFGS)."""
    return [*OPTIMIZERS, *CLOSURE_OPTIMIZERS]


def resolve_name(name: str) -> str:
    """The class name for ``name``, ignoring case (``"adamw"`` -> ``"AdamW"``), or for its folder's
    name (``"sparse_adam"`` -> ``"SparseAdam"``); ``KeyError`` if unknown."""
    classes = {**OPTIMIZERS, **CLOSURE_OPTIMIZERS}
    by_lower = {class_name.lower(): class_name for class_name in classes}
    by_lower.update({cls.name: class_name for class_name, cls in classes.items()})
    return by_lower[name.lower()]


def load_view(class_name: str) -> OptimizerView:
    if class_name in CLOSURE_OPTIMIZERS:
        # L-BFGS: the kernel at its heart (one step of the two-loop recursion and the next dot
        # product), and the control flow that calls it, written once for the three backends
        cls = CLOSURE_OPTIMIZERS[class_name]
        package = cls.__module__
        math = parse_math_doc(read_docstring(package))
        kernels = [read_function(package, cls.shown_kernel, backend) for backend in BACKENDS]
        return OptimizerView(class_name, cls.name, package, math, kernels, read_control(package, cls.control_flow))
    cls = OPTIMIZERS[class_name]
    package = cls.__module__  # the optimizer's folder, e.g. "fastopt.adam"
    math = parse_math_doc(read_docstring(package))
    # the kernels of the folder that steps it (AdamW's are Adam's)
    kernels = [read_kernel(f"fastopt.{cls.kernel}", cls.kernel, backend) for backend in BACKENDS]
    return OptimizerView(class_name, cls.name, package, math, kernels, read_scalars(cls.algorithm))
