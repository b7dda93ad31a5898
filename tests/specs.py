"""The optimizers under test: valid hyperparameter strategies and torch.optim equivalents.

One table, used by the agreement, torch and API tests (PyTorch's ``OptimizerInfo`` idea).
"""

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

import fastopt

FAST_BACKENDS = ("numba", "cython")


def rates(low=0.0, high=1.0):
    """Hyperparameters exactly representable as Python floats, with the round values users pick."""
    return st.one_of(st.sampled_from([low, high / 10, high / 2]), st.floats(low, high, allow_nan=False))


lr_st = st.one_of(st.sampled_from([1e-3, 1e-2, 0.1]), st.floats(0.0, 1.0))
decay_st = st.one_of(st.just(0.0), st.sampled_from([0.9, 0.99, 0.999]), st.floats(0.0, 0.9999))
wd_st = st.one_of(st.just(0.0), st.sampled_from([1e-2, 0.1]), st.floats(0.0, 0.5))
eps_st = st.one_of(st.sampled_from([1e-8, 1e-10, 1e-3, 0.0]), st.floats(0.0, 1e-2))


@st.composite
def sgd_options(draw):
    momentum = draw(st.one_of(st.just(0.0), decay_st))
    nesterov = momentum > 0 and draw(st.booleans())
    dampening = 0.0 if nesterov else draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0)))
    return dict(
        lr=draw(lr_st), momentum=momentum, dampening=dampening, weight_decay=draw(wd_st),
        nesterov=nesterov, maximize=draw(st.booleans()), decoupled_weight_decay=draw(st.booleans()),
    )


adagrad_options = st.fixed_dictionaries(
    dict(
        lr=lr_st,
        lr_decay=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
        weight_decay=wd_st,
        initial_accumulator_value=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
        eps=eps_st,
        maximize=st.booleans(),
        eps_inside_sqrt=st.booleans(),
        decoupled_weight_decay=st.booleans(),
    )
)
rmsprop_options = st.fixed_dictionaries(
    dict(
        lr=lr_st, rho=decay_st, eps=eps_st, weight_decay=wd_st,
        momentum=st.one_of(st.just(0.0), decay_st), centered=st.booleans(), maximize=st.booleans(),
        eps_inside_sqrt=st.booleans(), lr_in_momentum=st.booleans(), decoupled_weight_decay=st.booleans(),
    )
)


@st.composite
def adam_options(draw, decoupled=None):
    """Adam's options with its convention flags (``eps_hat`` and ``amsgrad_corrected_max`` are
    exclusive); ``decoupled=True`` for AdamW, whose decay is always decoupled."""
    options = draw(st.fixed_dictionaries(dict(
        lr=lr_st, betas=st.tuples(decay_st, decay_st), eps=eps_st, weight_decay=wd_st,
        amsgrad=st.booleans(), maximize=st.booleans(),
    )))
    flag = draw(st.sampled_from([None, "eps_hat", "amsgrad_corrected_max"]))
    if flag:
        options[flag] = True
    options["decoupled_weight_decay"] = draw(st.booleans()) if decoupled is None else decoupled
    return options


adadelta_options = st.fixed_dictionaries(
    dict(
        lr=st.one_of(st.just(1.0), lr_st), rho=st.one_of(st.just(1.0), decay_st), eps=eps_st,
        weight_decay=wd_st, maximize=st.booleans(), decoupled_weight_decay=st.booleans(),
    )
)
adamax_options = st.fixed_dictionaries(
    dict(lr=lr_st, betas=st.tuples(decay_st, decay_st), eps=eps_st, weight_decay=wd_st, maximize=st.booleans(),
         eps_outside_max=st.booleans(), decoupled_weight_decay=st.booleans())
)
nadam_options = st.fixed_dictionaries(
    dict(
        lr=lr_st, betas=st.tuples(decay_st, decay_st), eps=eps_st, weight_decay=wd_st,
        momentum_decay=st.one_of(st.sampled_from([4e-3, 0.0, 0.1]), st.floats(0.0, 1.0)),
        decoupled_weight_decay=st.booleans(), maximize=st.booleans(),
    )
)
radam_options = st.fixed_dictionaries(
    dict(
        lr=lr_st, betas=st.tuples(decay_st, decay_st), eps=eps_st, weight_decay=wd_st,
        decoupled_weight_decay=st.booleans(), maximize=st.booleans(),
    )
)
asgd_options = st.fixed_dictionaries(
    dict(
        lr=lr_st,
        lambd=st.one_of(st.sampled_from([1e-4, 0.0, 0.1]), st.floats(0.0, 1.0)),
        alpha=st.one_of(st.sampled_from([0.75, 0.5, 1.0]), st.floats(0.0, 2.0)),
        # small t0 (even negative or fractional): averaging starts within the steps a test runs
        t0=st.one_of(st.sampled_from([1e6, 0.0, 2.0]), st.floats(-3.0, 6.0)),
        weight_decay=wd_st,
        maximize=st.booleans(),
    )
)
adabelief_options = st.fixed_dictionaries(
    dict(
        lr=lr_st, betas=st.tuples(decay_st, decay_st), eps=st.one_of(st.just(1e-16), eps_st),
        weight_decay=wd_st, amsgrad=st.booleans(), maximize=st.booleans(),
        eps_root=st.one_of(st.just(1e-16), eps_st), decoupled_weight_decay=st.booleans(),
        fixed_decay=st.booleans(),
    )
)
adafactor_options = st.fixed_dictionaries(
    dict(
        lr=st.one_of(st.sampled_from([1e-2, 0.1, 1.0]), lr_st),
        beta2_decay=st.one_of(st.sampled_from([-0.8, 0.0, -1.0, -0.5]), st.floats(-2.0, 0.0)),
        eps=st.tuples(st.one_of(st.none(), st.sampled_from([1e-30, 1e-3]), st.floats(0.0, 1e-2)),
                      st.one_of(st.sampled_from([1e-3, 0.0]), st.floats(0.0, 1.0))),
        d=st.one_of(st.sampled_from([1.0, 2.0]), st.floats(1.0, 10.0)),
        weight_decay=wd_st,
        maximize=st.booleans(),
    )
)


lamb_options = st.fixed_dictionaries(
    dict(
        lr=lr_st, betas=st.tuples(decay_st, decay_st), eps=st.one_of(st.just(1e-6), eps_st),
        eps_root=st.one_of(st.just(0.0), eps_st), weight_decay=wd_st, maximize=st.booleans(),
    )
)


def clip_half_step(step):
    """A clipping value for ADOPT's tests that clips often: 0.5 at the second step (module-level,
    so that groups holding it pickle)."""
    return 0.5 * step


def clip_infinite(step):
    """ADOPT's clipping value that clips nothing, as ``clip_lambda=None`` does."""
    return float("inf")


adopt_options = st.fixed_dictionaries(
    dict(
        lr=lr_st, betas=st.tuples(decay_st, decay_st), eps=st.one_of(st.just(1e-6), eps_st),
        clip_lambda=st.sampled_from([fastopt.adopt.quarter_power, None, clip_half_step, clip_infinite]),
        weight_decay=wd_st, decouple=st.booleans(), maximize=st.booleans(),
    )
)
schedule_free_adamw_options = st.fixed_dictionaries(
    dict(
        lr=lr_st,
        # beta1 > 0: eval() divides by it
        betas=st.tuples(st.one_of(st.sampled_from([0.9, 0.5]), st.floats(1e-3, 0.9999)), decay_st),
        eps=eps_st, weight_decay=wd_st,
        warmup_steps=st.one_of(st.just(0), st.integers(1, 6)),
        r=st.one_of(st.just(0.0), st.sampled_from([0.5, 1.0]), st.floats(0.0, 4.0)),
        weight_lr_power=st.one_of(st.just(2.0), st.sampled_from([0.0, 1.0]), st.floats(0.0, 4.0)),
        maximize=st.booleans(),
    )
)
lion_options = st.fixed_dictionaries(
    dict(lr=lr_st, betas=st.tuples(decay_st, decay_st), weight_decay=wd_st, maximize=st.booleans())
)



@st.composite
def rprop_options(draw):
    """Rprop's options: a starting step size that may lie outside the bounds (the first clamp
    then moves it), factors on both sides of 1, bounds from 0 to inf."""
    smallest = draw(st.one_of(st.sampled_from([0.0, 1e-6, 1e-3]), st.floats(0.0, 1.0)))
    largest = draw(st.one_of(st.sampled_from([50.0, 1.0, np.inf]), st.floats(smallest, 100.0)))
    return dict(
        lr=draw(st.one_of(st.sampled_from([1e-2, 0.1, 100.0]), lr_st)),
        etas=(draw(st.one_of(st.just(0.5), st.floats(0.0, 1.0, exclude_min=True, exclude_max=True))),
              draw(st.one_of(st.just(1.2), st.floats(1.0, 10.0, exclude_min=True)))),
        step_sizes=(smallest, largest),
        maximize=draw(st.booleans()),
    )

@dataclass(frozen=True)
class Spec:
    cls: type
    options: st.SearchStrategy
    # Configurations compared with torch.optim (fastopt keyword arguments).
    torch_configs: list[dict[str, Any]] = field(default_factory=list)
    # fastopt keyword names -> torch's, where they differ.
    to_torch: Callable[[dict], dict] = lambda kwargs: dict(kwargs)
    # False where torch.optim has no such class (Lion): the configurations above then serve the
    # generic tests only, and test_optimizers.py checks the algorithm another way.
    in_torch: bool = True

    @property
    def name(self) -> str:
        return self.cls.__name__


def _rmsprop_to_torch(kwargs):
    kwargs = dict(kwargs)
    kwargs["alpha"] = kwargs.pop("rho", 0.9)  # fastopt's default rho is 0.9, torch's alpha 0.99
    return kwargs


SPECS = {
    "SGD": Spec(
        fastopt.SGD,
        sgd_options(),
        [
            dict(lr=0.1),
            dict(lr=0.05, momentum=0.9),
            dict(lr=0.05, momentum=0.9, dampening=0.3),
            dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
            dict(lr=0.05, momentum=0.5, weight_decay=0.01, maximize=True),
        ],
    ),
    "Adagrad": Spec(
        fastopt.Adagrad,
        adagrad_options,
        [
            dict(),
            dict(lr=0.1, lr_decay=0.1, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-6),
            dict(lr=0.05, weight_decay=0.01, maximize=True),
        ],
    ),
    "RMSprop": Spec(
        fastopt.RMSprop,
        rmsprop_options,
        [
            dict(lr=0.01),
            dict(lr=0.01, rho=0.99, centered=True),
            dict(lr=0.01, momentum=0.9),
            dict(lr=0.01, rho=0.8, centered=True, momentum=0.9, weight_decay=0.01, maximize=True, eps=1e-3),
        ],
        _rmsprop_to_torch,
    ),
    "Adam": Spec(
        fastopt.Adam,
        adam_options(),
        [
            dict(lr=0.01),
            dict(lr=0.01, amsgrad=True),
            dict(lr=0.01, weight_decay=0.01),
            dict(lr=0.01, betas=(0.8, 0.95), eps=1e-3, amsgrad=True, maximize=True, weight_decay=0.01),
        ],
    ),
    "AdamW": Spec(
        fastopt.AdamW,
        adam_options(decoupled=True),
        [
            dict(lr=0.01),
            dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True),
            dict(lr=0.001, betas=(0.5, 0.9), weight_decay=0.5),
        ],
    ),
    "Adadelta": Spec(
        fastopt.Adadelta,
        adadelta_options,
        [
            dict(),
            dict(rho=0.95, eps=1e-3),
            dict(lr=0.5, rho=0.5, eps=1e-4, weight_decay=0.01, maximize=True),
        ],
    ),
    "Adamax": Spec(
        fastopt.Adamax,
        adamax_options,
        [
            dict(),
            dict(lr=0.01, weight_decay=0.01),
            dict(lr=0.01, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.01, maximize=True),
        ],
    ),
    "NAdam": Spec(
        fastopt.NAdam,
        nadam_options,
        [
            dict(),
            dict(lr=0.01, weight_decay=0.01),
            dict(lr=0.01, momentum_decay=0.1),
            dict(lr=0.01, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.1, momentum_decay=0.01,
                 decoupled_weight_decay=True, maximize=True),
        ],
    ),
    "RAdam": Spec(  # 12 steps: unrectified for t <= 5, rectified from t = 6 (beta2 = 0.999)
        fastopt.RAdam,
        radam_options,
        [
            dict(),
            dict(lr=0.01, weight_decay=0.01, maximize=True),
            dict(lr=0.01, betas=(0.9, 0.99), eps=1e-3, weight_decay=0.1, decoupled_weight_decay=True),
        ],
    ),
    "ASGD": Spec(  # t0 small enough that the average (4) moves within the steps compared
        fastopt.ASGD,
        asgd_options,
        [
            dict(),
            dict(lr=0.05, t0=2.0),
            dict(lr=0.05, lambd=0.01, alpha=0.6, t0=0.0, weight_decay=0.1, maximize=True),
        ],
    ),
    "Lion": Spec(
        fastopt.Lion,
        lion_options,
        [
            dict(),
            dict(lr=1e-3, weight_decay=0.1),
            dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1, maximize=True),
        ],
        in_torch=False,
    ),
    "Rprop": Spec(  # 12 steps: the signs of random gradients repeat and flip many times
        fastopt.Rprop,
        rprop_options(),
        [
            dict(),
            dict(lr=0.1, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2)),
            dict(lr=100.0, etas=(0.25, 2.0), step_sizes=(1e-4, 1.0), maximize=True),
        ],
    ),
    "Adafactor": Spec(  # sums in fastopt's order (fastopt._sums): compared with torch within rounding
        fastopt.Adafactor,
        adafactor_options,
        [
            dict(),
            dict(lr=0.05, beta2_decay=-0.5, weight_decay=0.1),
            dict(lr=0.5, eps=(1e-3, 1e-2), d=2.0, maximize=True),
        ],
    ),
    "AdaBelief": Spec(  # not in torch.optim: compared with optax (test_conventions.py) and the authors' package
        fastopt.AdaBelief,
        adabelief_options,
        [
            dict(),
            dict(lr=0.01, amsgrad=True, weight_decay=0.01, decoupled_weight_decay=False),
            dict(lr=0.01, betas=(0.8, 0.95), eps=1e-8, eps_root=0.0, weight_decay=0.1, maximize=True),
            dict(lr=0.01, weight_decay=0.05, fixed_decay=True),
        ],
        in_torch=False,
    ),
    "ADOPT": Spec(  # not in torch.optim: compared with optax (test_conventions.py) and the authors' package
        fastopt.ADOPT,
        adopt_options,
        [
            dict(),
            dict(lr=0.01, weight_decay=0.01),
            dict(lr=0.01, betas=(0.8, 0.95), eps=1e-8, clip_lambda=None, weight_decay=0.1, decouple=True,
                 maximize=True),
            dict(lr=0.01, clip_lambda=clip_half_step),
        ],
        in_torch=False,
    ),
    "ScheduleFreeAdamW": Spec(  # not in torch.optim: compared with the authors' package (test_schedule_free.py)
        fastopt.ScheduleFreeAdamW,
        schedule_free_adamw_options,
        [
            dict(),
            dict(lr=0.01, warmup_steps=3, weight_decay=0.01),
            dict(lr=0.01, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.1, r=1.0, weight_lr_power=1.0, maximize=True),
        ],
        in_torch=False,
    ),
    "LAMB": Spec(  # not in torch.optim: compared with optax (test_lamb.py); norms in fastopt._sums' order
        fastopt.LAMB,
        lamb_options,
        [
            dict(),
            dict(lr=0.01, weight_decay=0.01),
            dict(lr=0.01, betas=(0.8, 0.95), eps=1e-8, eps_root=1e-8, weight_decay=0.1, maximize=True),
        ],
        in_torch=False,
    ),
}

DTYPES = (np.float32, np.float64)


def assert_bits_equal(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    """Identical bits, except that any NaN equals any NaN (payloads are not part of the contract).

    Stricter than ``np.array_equal(..., equal_nan=True)``: it also tells ``-0.0`` from ``0.0``.
    """
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[actual.dtype.itemsize]  # float16 and bfloat16 too
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), f"{what}: NaNs in different places"
    differ = (actual.view(uint) != expected.view(uint)) & ~nan_a
    if differ.any():
        first = np.argwhere(differ)[0]
        raise AssertionError(
            f"{what}: {int(differ.sum())} of {actual.size} elements differ; first at {tuple(first)}: "
            f"{actual[tuple(first)]!r} != {expected[tuple(first)]!r}"
        )


def assert_same_state(actual_opt, expected_opt, what: str = "") -> None:
    assert actual_opt.state.keys() == expected_opt.state.keys(), what
    for index, expected in expected_opt.state.items():
        actual = actual_opt.state[index]
        assert actual.keys() == expected.keys(), f"{what} state[{index}]"
        for key, value in expected.items():
            if isinstance(value, np.ndarray):
                assert_bits_equal(actual[key], value, f"{what} state[{index}][{key!r}]")
            else:
                assert actual[key] == value, f"{what} state[{index}][{key!r}]"


def assert_large_run_agrees(cls, options, backend, dtype, rng, size, steps):
    """``steps`` steps of ``cls(**options)`` on one parameter of ``size`` elements, on the
    reference and on ``backend``, with gradients of mixed scale: parameter and state bit-identical."""
    initial = rng.standard_normal(size).astype(dtype)
    reference_param, backend_param = initial.copy(), initial.copy()
    reference = cls([reference_param], backend="reference", **options)
    fast = cls([backend_param], backend=backend, **options)
    for _ in range(steps):
        grad = (rng.standard_normal(initial.size) * rng.choice([1e-3, 1.0, 1e3])).astype(dtype)
        reference.step([grad])
        fast.step([grad])
    assert_bits_equal(backend_param, reference_param, "param")
    assert_same_state(fast, reference, backend)
