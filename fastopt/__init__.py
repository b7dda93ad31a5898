"""fastopt: first-order optimizers written three ways that agree bit for bit.

Each optimizer lives in its own folder (``fastopt/adam/`` ...) holding its maths (the folder's
docstring), a NumPy reference that *is* the specification, a Numba twin and a Cython twin of the
same element loop. The classes below share one torch.optim-like API::

    import numpy as np, fastopt
    w = np.zeros(3)
    opt = fastopt.Adam([w], lr=0.1)
    for _ in range(100):
        opt.step([2 * (w - 1)])          # gradient of |w - 1|^2; w is updated in place
"""

from ._backends import BACKENDS, BackendUnavailable, available_backends
from ._flat import FlatParameters, flatten
from ._optimizer import Optimizer
from ._threads import get_num_threads, set_num_threads
from .adabelief import AdaBelief
from .adafactor import Adafactor
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .adopt import ADOPT
from .asgd import ASGD
from .lamb import LAMB
from .lbfgs import LBFGS
from .lion import Lion
from .muon import Muon
from .nadam import NAdam
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .schedule_free_adamw import ScheduleFreeAdamW
from .sgd import SGD
from .sparse_adam import SparseAdam

__version__ = "0.1.0"

OPTIMIZERS = {
    cls.__name__: cls
    for cls in (SGD, Adagrad, RMSprop, Adam, AdamW, Adadelta, Adamax, NAdam, RAdam, Lion, Rprop, ASGD, SparseAdam,
                AdaBelief, Adafactor, ADOPT, ScheduleFreeAdamW, LAMB)
}
"""Every optimizer class stepped with gradients (``step(grads)``) on parameters of any shape, by
name, in teaching order."""

CLOSURE_OPTIMIZERS = {"LBFGS": LBFGS}
"""The optimizers that evaluate the loss themselves (``step(closure)``, the closure returning
``(loss, grads)``): L-BFGS. Outside ``OPTIMIZERS``, whose generic tests step with gradients."""

MATRIX_OPTIMIZERS = {"Muon": Muon}
"""The optimizers of 2-D parameters only (Muon), by name: ``python -m fastopt show`` and ``bench``
take them; the suites, demo and tours that step every class of :data:`OPTIMIZERS` on vectors do
not."""

__all__ = [
    "ADOPT",
    "ASGD",
    "BACKENDS",
    "OPTIMIZERS",
    "AdaBelief",
    "Adafactor",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "BackendUnavailable",
    "CLOSURE_OPTIMIZERS",
    "FlatParameters",
    "LAMB",
    "LBFGS",
    "Lion",
    "MATRIX_OPTIMIZERS",
    "Muon",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
    "ScheduleFreeAdamW",
    "SparseAdam",
    "available_backends",
    "flatten",
    "get_num_threads",
    "set_num_threads",
]
