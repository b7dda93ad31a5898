"""L-BFGS (fastopt.lbfgs): its vector kernels' three twins bit for bit, whole steps bit for bit
across backends (params and every state entry), torch.optim.LBFGS as the oracle in float64, bad
input rejected before anything changes, and state dicts round trip across backends.

L-BFGS is a closure optimizer, outside fastopt.OPTIMIZERS (the generic tests step optimizers with
gradients); this file covers the same properties for it.
"""

import copy
import importlib.util
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp

import fastopt
from fastopt.lbfgs import LBFGS, reference

from .specs import DTYPES, FAST_BACKENDS, assert_bits_equal
from .strategies import any_elements, finite_elements

BACKENDS = ("reference", *FAST_BACKENDS)
LINE_SEARCHES = (None, "strong_wolfe")
KERNELS = ("dot", "add_scaled_then_dot", "add_scaled", "scaled", "difference", "max_abs_scaled", "sum_abs")


def kernels(backend):
    return fastopt._backends._load_module("lbfgs", backend)


# --------------------------------------------------------------------------------------------
# Comparing whole states: arrays bit for bit, scalars by value and type, lists item by item
# --------------------------------------------------------------------------------------------
def assert_same_value(actual, expected, what):
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), what
        assert_bits_equal(actual, expected, what)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), what
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same_value(a, e, f"{what}[{i}]")
    elif expected is None:
        assert actual is None, what
    else:
        assert type(actual) is type(expected), what
        assert_bits_equal(np.asarray(actual), np.asarray(expected), what)


def assert_same_state(actual, expected, what=""):
    assert actual.keys() == expected.keys(), what
    for key in expected:
        assert_same_value(actual[key], expected[key], f"{what} state[{key!r}]")


# --------------------------------------------------------------------------------------------
# Problems: a closure returning (loss, grads) on NumPy arrays
# --------------------------------------------------------------------------------------------
def quadratic(params, matrices, targets):
    """``sum_i 0.5 |A_i (x_i - b_i)|^2`` over the params: loss and gradients in the params' dtype."""

    def closure():
        loss, grads = 0.0, []
        for p, a, b in zip(params, matrices, targets):
            r = a @ (p.reshape(-1) - b)
            loss += 0.5 * float(r @ r)
            grads.append((a.T @ r).reshape(p.shape).astype(p.dtype))
        return loss, grads

    return closure


def random_problem(dtype, seed, shapes=((7, 3), (11,), (), (0,), (1,))):
    rng = np.random.default_rng(seed)
    params = [np.asarray(rng.standard_normal(shape)).astype(dtype) for shape in shapes]
    matrices, targets = [], []
    for p in params:
        n = p.size
        scales = np.exp(rng.uniform(-2, 2, n))  # conditioned up to e^4: many iterations, a full history
        matrices.append((rng.standard_normal((n, n)) * 0.2 + np.diag(scales)).astype(dtype))
        targets.append(rng.standard_normal(n).astype(dtype))
    return params, matrices, targets


def run(backend, dtype, seed, steps=3, **options):
    params, matrices, targets = random_problem(dtype, seed)
    opt = LBFGS(params, backend=backend, **options)
    closure = quadratic(params, matrices, targets)
    losses = [opt.step(closure) for _ in range(steps)]
    return params, opt, losses


# --------------------------------------------------------------------------------------------
# The kernels, twin against twin
# --------------------------------------------------------------------------------------------
def kernel_arrays(dtype, elements):
    return st.integers(0, 70).flatmap(
        lambda n: st.tuples(*[hynp.arrays(dtype, n, elements=elements(dtype)) for _ in range(3)]))


def call_kernel(module, name, x, y, z, alpha):
    x, y, z = x.copy(), y.copy(), z.copy()
    args = {
        "dot": (x, y), "add_scaled_then_dot": (x, y, z, alpha), "add_scaled": (x, y, alpha),
        "scaled": (x, y, alpha), "difference": (x, y, z), "max_abs_scaled": (x, alpha), "sum_abs": (x,),
    }[name]
    result = getattr(module, name)(*args)
    return result, x


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("elements", [finite_elements, any_elements], ids=["finite", "extreme"])
def test_each_kernel_matches_the_reference_bit_for_bit(backend, dtype, name, elements, measured):
    """Lengths 0-70 (every partial block of 8 lanes), any values (inf, NaN, subnormals, overflow)."""

    @given(arrays=kernel_arrays(dtype, elements), alpha=elements(dtype))
    def check(arrays, alpha):
        alpha = dtype(alpha)
        expected, expected_out = call_kernel(reference, name, *arrays, alpha)
        actual, actual_out = call_kernel(kernels(backend), name, *arrays, alpha)
        assert_bits_equal(actual_out, expected_out, f"{name} output")
        if expected is not None:
            assert type(actual) is float or isinstance(actual, float)
            assert_bits_equal(np.float64(actual).reshape(1), np.float64(expected).reshape(1), f"{name} result")
        measured["examples"][f"lbfgs-kernels-{backend} ({elements.__name__})"] += 1

    check()


def test_the_reductions_follow_the_summation_order():
    """The reference's dot is fastopt._sums' rule on the products (lane k % 8, one tree)."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(29), rng.standard_normal(29)
    lanes = [0.0] * 8
    for k in range(29):
        lanes[k % 8] += float(x[k]) * float(y[k])
    expected = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    for backend in BACKENDS:
        assert kernels(backend).dot(x, y) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_short_array_is_an_error_in_every_kernel(backend):
    module, long, short = kernels(backend), np.ones(9), np.ones(8)
    with pytest.raises(ValueError, match="y has 8 elements, but x's length is 9"):
        module.dot(long, short)
    with pytest.raises(ValueError, match="other has 8 elements"):
        module.add_scaled_then_dot(long.copy(), long, short, 1.0)
    with pytest.raises(ValueError, match="b has 8 elements"):
        module.difference(long.copy(), long, short)


# --------------------------------------------------------------------------------------------
# Whole steps, backend against backend
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
@pytest.mark.parametrize("history_size", [3, 100])
def test_backends_agree_bit_for_bit(backend, dtype, line_search_fn, history_size):
    """Several steps on five parameters (2-D, 1-D, 0-d, empty, one element); a history of 3 is
    full after three iterations and drops its oldest pair from then on."""
    options = dict(line_search_fn=line_search_fn, history_size=history_size, lr=1 if line_search_fn else 0.05)
    expected_params, expected, expected_losses = run("reference", dtype, seed=7, **options)
    actual_params, actual, actual_losses = run(backend, dtype, seed=7, **options)
    assert actual_losses == expected_losses
    for i, (a, e) in enumerate(zip(actual_params, expected_params)):
        assert_bits_equal(a, e, f"params[{i}]")
    assert_same_state(actual.state[0], expected.state[0], backend)
    assert expected.state[0]["n_iter"] > 3  # the history was used
    assert len(expected.state[0]["old_dirs"]) == 3 if history_size == 3 else len(expected.state[0]["old_dirs"]) > 3


problem_sizes = st.lists(st.integers(0, 19), min_size=1, max_size=3)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_backends_agree_on_any_sizes_and_values(backend, dtype, measured):
    """Hypothesis: parameters of odd sizes (empty and one-element included) with values and
    curvatures anywhere in the dtype's range (inf and NaN too), either line search."""

    @given(
        sizes=problem_sizes,
        data=st.data(),
        line_search_fn=st.sampled_from(LINE_SEARCHES),
        history_size=st.integers(1, 4),
        lr=st.sampled_from([1.0, 0.1, 1e-3]),
    )
    def check(sizes, data, line_search_fn, history_size, lr):
        elements = data.draw(st.sampled_from([finite_elements, any_elements]))
        initial = [data.draw(hynp.arrays(dtype, n, elements=elements(dtype))) for n in sizes]
        curvature = [data.draw(hynp.arrays(dtype, n, elements=elements(dtype))) for n in sizes]
        results = []
        for name in ("reference", backend):
            params = [p.copy() for p in initial]

            def closure(params=params):
                with np.errstate(all="ignore"):
                    grads = [c * p for c, p in zip(curvature, params)]
                    loss = float(sum(np.sum(g * p, dtype=np.float64) for g, p in zip(grads, params))) / 2
                return loss, grads

            opt = LBFGS(params, lr=lr, max_iter=6, history_size=history_size, line_search_fn=line_search_fn,
                        backend=name)
            with np.errstate(all="ignore"):
                losses = [opt.step(closure) for _ in range(2)]
            results.append((params, opt.state[0], losses))
        (expected_params, expected_state, expected_losses), (params, state, losses) = results
        np.testing.assert_equal(losses, expected_losses)
        for a, e in zip(params, expected_params):
            assert_bits_equal(a, e, "param")
        assert_same_state(state, expected_state, backend)
        measured["examples"][f"lbfgs-{backend} (sizes and values)"] += 1

    check()


# --------------------------------------------------------------------------------------------
# torch.optim.LBFGS, the oracle (float64)
# --------------------------------------------------------------------------------------------
def least_squares(seed, n=40, m=60):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, n)) * np.exp(rng.uniform(-1.5, 1.5, n))  # condition number ~ 1e2
    b = rng.standard_normal(m)
    x0 = rng.standard_normal(n)

    def loss_and_grad(x):
        r = a @ x - b
        return 0.5 * float(r @ r), a.T @ r

    return x0, loss_and_grad


def torch_run(x0, loss_and_grad, steps, **options):
    """torch.optim.LBFGS with a closure that computes the same loss and gradient in NumPy, so that
    only the optimizers' own arithmetic differs."""
    torch = pytest.importorskip("torch")
    x = torch.tensor(x0.copy())
    opt = torch.optim.LBFGS([x], **options)

    def closure():
        loss, grad = loss_and_grad(x.detach().numpy())
        x.grad = torch.from_numpy(grad.copy())
        return torch.tensor(loss, dtype=torch.float64)

    losses = [float(opt.step(closure)) for _ in range(steps)]
    return x.detach().numpy(), losses, opt.state[x]


def relative(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


# line search -> (lr, steps): steps of max_iter=20 iterations, stopped by the tolerances
ORACLE_CASES = {None: (0.01, 2), "strong_wolfe": (1.0, 1)}
TORCH_TOLERANCE = 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_torch_in_float64(backend, line_search_fn, seed, measured):
    lr, steps = ORACLE_CASES[line_search_fn]
    x0, loss_and_grad = least_squares(seed)
    options = dict(lr=lr, line_search_fn=line_search_fn, history_size=10)
    expected_x, expected_losses, expected_state = torch_run(x0, loss_and_grad, steps, **options)

    x = x0.copy()
    opt = LBFGS([x], backend=backend, **options)

    def closure():
        loss, grad = loss_and_grad(x)
        return loss, [grad]

    losses = [opt.step(closure) for _ in range(steps)]
    state = opt.state[0]
    assert state["n_iter"] == expected_state["n_iter"] and state["func_evals"] == expected_state["func_evals"]
    assert len(state["old_dirs"]) == len(expected_state["old_dirs"])
    worst = max(relative(x, expected_x), relative(losses, expected_losses),
                relative(state["d"], expected_state["d"].numpy()), relative(state["t"], float(expected_state["t"])))
    measured["torch_worst"][f"LBFGS-{line_search_fn or 'fixed'} float64"] = max(
        measured["torch_worst"][f"LBFGS-{line_search_fn or 'fixed'} float64"], worst)
    assert worst <= TORCH_TOLERANCE, worst


# --------------------------------------------------------------------------------------------
# Bad input: a clear error naming the argument, nothing changed
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(lr=-1.0), ValueError, "Invalid learning rate"),
        (dict(lr=math.nan), ValueError, "Invalid learning rate"),
        (dict(lr="1"), TypeError, "lr must be a real number"),
        (dict(max_iter=0), ValueError, "max_iter must be a positive integer"),
        (dict(max_iter=2.5), ValueError, "max_iter must be a positive integer"),
        (dict(max_eval=0), ValueError, "max_eval must be a positive integer"),
        (dict(tolerance_grad=-1e-7), ValueError, "tolerance_grad must be a non-negative"),
        (dict(tolerance_change=math.inf), ValueError, "tolerance_change must be a non-negative"),
        (dict(history_size=0), ValueError, "history_size must be a positive integer"),
        (dict(history_size=True), ValueError, "history_size must be a positive integer"),
        (dict(line_search_fn="backtracking"), ValueError, "line_search_fn must be None or 'strong_wolfe'"),
        (dict(backend="fortran"), ValueError, "backend must be one of"),
    ],
)
def test_invalid_hyperparameters_are_rejected_naming_the_argument(options, error, message):
    with pytest.raises(error, match=message):
        LBFGS([np.zeros(3)], **options)


def test_invalid_params_are_rejected():
    with pytest.raises(ValueError, match="empty list"):
        LBFGS([])
    with pytest.raises(TypeError, match=r"params\[1\] has dtype float32 but params\[0\] has dtype float64"):
        LBFGS([np.zeros(3), np.zeros(2, np.float32)])
    with pytest.raises(TypeError, match=r"params\[0\] has dtype int64"):
        LBFGS([np.zeros(3, np.int64)])
    with pytest.raises(ValueError, match="per-parameter options"):
        LBFGS([{"params": [np.zeros(3)]}, {"params": [np.zeros(2)]}])
    base = np.zeros(10)
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] share memory"):
        LBFGS([base[:6], base[4:]])


def good_closure(params):
    """A quartic: not solved by one line search, so a step makes several evaluations."""

    def closure():
        return float(sum(np.sum(p**4 + p * p) for p in params)), [4 * p**3 + 2 * p for p in params]

    return closure


def bad_closures(params):
    two = [np.ones(p.shape, p.dtype) for p in params]
    return [
        (lambda: 1.0, TypeError, r"closure must return a tuple \(loss, grads\)"),
        (lambda: ("1.0", two), TypeError, "the loss the closure returns must be a real number"),
        (lambda: (1.0, two[:1]), ValueError, "closure returned 1 grads for 2 params"),
        (lambda: (1.0, np.ones(5)), TypeError, "grads as a list of arrays"),
        (lambda: (1.0, [two[0], np.ones(3)]), ValueError, r"grads\[1\] has shape \(3,\) but params\[1\] has shape \(2, 2\)"),
        (lambda: (1.0, [two[0].astype(np.float32), two[1]]), TypeError, r"grads\[0\] has dtype float32"),
        (lambda: (1.0, [two[0], "g"]), TypeError, r"grads\[1\] must be a numpy.ndarray"),
    ]


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
@pytest.mark.parametrize("case", range(7))
def test_a_bad_closure_result_changes_nothing_whenever_it_comes(line_search_fn, case):
    """At the first evaluation or in the middle of the step (after the parameters have moved): the
    error names what was wrong, and the parameters and the state are as the step found them."""
    for bad_at in (1, 3):
        params = [np.linspace(-1, 1, 3), np.arange(4.0).reshape(2, 2)]
        opt = LBFGS(params, lr=0.1, line_search_fn=line_search_fn)
        opt.step(good_closure(params))
        before_params, before_state = [p.copy() for p in params], fastopt.lbfgs._copy_state(opt.state[0])
        bad, error, message = bad_closures(params)[case]
        good, calls = good_closure(params), [0]

        def closure(bad=bad, good=good, calls=calls, bad_at=bad_at):
            calls[0] += 1
            return bad() if calls[0] == bad_at else good()

        with pytest.raises(error, match=message):
            opt.step(closure)
        assert calls[0] == bad_at
        for a, e in zip(params, before_params):
            assert_bits_equal(a, e, "param")
        assert_same_state(opt.state[0], before_state)


def test_a_closure_that_is_not_callable_is_rejected():
    opt = LBFGS([np.zeros(3)])
    with pytest.raises(TypeError, match="closure must be callable"):
        opt.step(None)
    assert opt.state == {}


def test_a_non_finite_loss_is_carried_as_torch_carries_it():
    """torch takes ``float(loss)``: a NaN loss fails every comparison. Same iterations, same counts."""
    torch = pytest.importorskip("torch")
    x0 = np.array([1.0, -2.0, 3.0])
    x = x0.copy()
    opt = LBFGS([x], lr=0.1)
    opt.step(lambda: (math.nan, [2 * x]))
    xt = torch.tensor(x0.copy())
    topt = torch.optim.LBFGS([xt], lr=0.1)

    def closure():
        xt.grad = 2 * xt.detach().clone()
        return torch.tensor(math.nan, dtype=torch.float64)

    topt.step(closure)
    assert opt.state[0]["n_iter"] == topt.state[xt]["n_iter"] and opt.state[0]["func_evals"] == topt.state[xt]["func_evals"]
    assert relative(x, xt.numpy()) <= TORCH_TOLERANCE


def test_an_invalid_state_is_rejected_before_the_step():
    params = [np.ones(4)]
    opt = LBFGS(params)
    opt.step(good_closure(params))
    opt.step(good_closure(params))
    opt.state[0]["d"] = np.ones(3)
    before = params[0].copy()
    with pytest.raises(ValueError, match=r"state\['d'\] must be a contiguous float64 array of shape \(4,\)"):
        opt.step(good_closure(params))
    assert_bits_equal(params[0], before)


# --------------------------------------------------------------------------------------------
# State dicts
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
def test_a_state_dict_loads_into_another_backend_and_continues_bit_for_bit(dtype, line_search_fn):
    lr = 1 if line_search_fn else 0.05
    params, saved_opt, _ = run("reference", dtype, seed=4, steps=1, lr=lr, line_search_fn=line_search_fn, history_size=4)
    checkpoint = saved_opt.state_dict()
    assert list(checkpoint["state"]) == [0] and set(checkpoint["state"][0]) == set(fastopt.lbfgs.STATE_KEYS)
    resumed = {}
    for backend in BACKENDS:
        copies = [p.copy() for p in params]
        _, matrices, targets = random_problem(dtype, 4)
        opt = LBFGS(copies, lr=123.0, backend=backend)  # the checkpoint's hyperparameters replace these
        opt.load_state_dict(checkpoint)
        assert opt.param_groups[0]["lr"] == lr and opt.param_groups[0]["history_size"] == 4
        assert_same_state(opt.state[0], saved_opt.state[0], "loaded")
        opt.step(quadratic(copies, matrices, targets))
        resumed[backend] = (copies, opt.state[0])
    _, matrices, targets = random_problem(dtype, 4)
    saved_opt.step(quadratic(params, matrices, targets))
    for backend, (copies, state) in resumed.items():
        for a, e in zip(copies, params):
            assert_bits_equal(a, e, backend)
        assert_same_state(state, saved_opt.state[0], backend)


def test_a_state_dict_is_a_copy_and_a_bad_one_changes_nothing():
    params = [np.ones(4)]
    opt = LBFGS(params)
    opt.step(good_closure(params))
    opt.step(good_closure(params))
    checkpoint = opt.state_dict()
    checkpoint["state"][0]["d"][:] = 7.0
    assert not np.any(opt.state[0]["d"] == 7.0)
    before = fastopt.lbfgs._copy_state(opt.state[0])
    checkpoint["state"][0]["old_dirs"] = checkpoint["state"][0]["old_dirs"][:-1]
    with pytest.raises(ValueError, match="must be lists of one length"):
        opt.load_state_dict(checkpoint)
    assert_same_state(opt.state[0], before)
    with pytest.raises(ValueError, match="one group"):
        opt.load_state_dict({"state": {}, "param_groups": []})


def test_lbfgs_is_a_closure_optimizer_outside_the_generic_registry():
    assert fastopt.CLOSURE_OPTIMIZERS == {"LBFGS": fastopt.LBFGS}
    assert "LBFGS" not in fastopt.OPTIMIZERS


# --------------------------------------------------------------------------------------------
# fastopt.torch.LBFGS: torch's closure and state, against torch.optim.LBFGS
# --------------------------------------------------------------------------------------------
def small_net(seed, dtype):
    """A 5-16-1 tanh network on 64 random points: its parameters and a data set."""
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(64, 5, generator=generator, dtype=dtype)
    targets = torch.sin(inputs.sum(1, keepdim=True))
    shapes = [(16, 5), (16,), (1, 16), (1,)]
    params = [(torch.randn(shape, generator=generator, dtype=dtype) * 0.5) for shape in shapes]
    return params, inputs, targets


def net_closure(opt, params, inputs, targets):
    torch = pytest.importorskip("torch")

    def closure():
        opt.zero_grad()
        hidden = torch.tanh(inputs @ params[0].T + params[1])
        loss = ((hidden @ params[2].T + params[3] - targets) ** 2).mean()
        loss.backward()
        return loss

    return closure


def train_net(cls, seed, dtype, steps, **options):
    params, inputs, targets = small_net(seed, dtype)
    params = [p.requires_grad_() for p in params]
    opt = cls(params, **options)
    closure = net_closure(opt, params, inputs, targets)
    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    return params, opt, losses


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
def test_fastopt_torch_lbfgs_agrees_with_torch_on_a_small_net(backend, line_search_fn, measured):
    """float64, 2 steps of 20 iterations (the net's gradients computed by autograd in both runs)."""
    torch = pytest.importorskip("torch")
    import fastopt.torch

    options = dict(lr=1 if line_search_fn else 0.1, line_search_fn=line_search_fn, history_size=10)
    expected_params, expected_opt, expected_losses = train_net(torch.optim.LBFGS, 0, torch.float64, 2, **options)
    params, opt, losses = train_net(fastopt.torch.LBFGS, 0, torch.float64, 2, backend=backend, **options)
    expected_state, state = expected_opt.state[expected_params[0]], opt.state[params[0]]
    assert state["n_iter"] == expected_state["n_iter"] and state["func_evals"] == expected_state["func_evals"]
    assert state.keys() == expected_state.keys()
    worst = max(relative(losses, expected_losses),
                *(relative(p.detach().numpy(), e.detach().numpy()) for p, e in zip(params, expected_params)))
    key = f"torch.LBFGS-{line_search_fn or 'fixed'} small net float64"
    measured["torch_worst"][key] = max(measured["torch_worst"][key], worst)
    assert worst <= TORCH_TOLERANCE, worst


def test_fastopt_torch_lbfgs_state_has_torchs_types_and_loads_both_ways():
    """A state dict of torch.optim.LBFGS continues here as it continues in torch, and fastopt's
    continues in torch.optim.LBFGS."""
    torch = pytest.importorskip("torch")
    import fastopt.torch

    options = dict(lr=1, line_search_fn="strong_wolfe", history_size=5, max_iter=4)
    _, torch_opt, _ = train_net(torch.optim.LBFGS, 1, torch.float64, 1, **options)
    fast_params, fast_opt, _ = train_net(fastopt.torch.LBFGS, 1, torch.float64, 1, **options)
    state = fast_opt.state[fast_params[0]]
    assert isinstance(state["d"], torch.Tensor) and isinstance(state["prev_flat_grad"], torch.Tensor)
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in state["ro"])
    assert isinstance(state["t"], float) and isinstance(state["prev_loss"], float)

    results = {}
    for source in ("torch", "fastopt"):
        checkpoint = (torch_opt if source == "torch" else fast_opt).state_dict()
        for target in (torch.optim.LBFGS, fastopt.torch.LBFGS):
            params, inputs, targets = small_net(1, torch.float64)
            saved_params = [p.detach().clone() for p in (fast_params if source == "fastopt" else torch_opt.param_groups[0]["params"])]
            params = [s.clone().requires_grad_() for s in saved_params]
            opt = target(params, **options)
            opt.load_state_dict(copy.deepcopy(checkpoint))  # torch.optim.LBFGS writes prev_flat_grad in place
            opt.step(net_closure(opt, params, inputs, targets))
            results[source, target.__module__] = [p.detach().numpy().copy() for p in params]
    for source in ("torch", "fastopt"):
        for a, e in zip(results[source, "fastopt.torch._lbfgs"], results[source, "torch.optim.lbfgs"]):
            assert relative(a, e) <= TORCH_TOLERANCE


def test_fastopt_torch_and_numpy_lbfgs_give_the_same_bits():
    torch = pytest.importorskip("torch")
    import fastopt.torch

    for dtype in DTYPES:
        arrays, matrices, targets = random_problem(dtype, 5, shapes=((6, 2), (5,)))
        tensors = [torch.from_numpy(p.copy()).requires_grad_() for p in arrays]
        numpy_opt = LBFGS(arrays, lr=0.05, history_size=3)
        numpy_opt.step(quadratic(arrays, matrices, targets))
        opt = fastopt.torch.LBFGS(tensors, lr=0.05, history_size=3)
        views = [t.detach().numpy() for t in tensors]
        numpy_closure = quadratic(views, matrices, targets)

        def closure():
            loss, grads = numpy_closure()
            for t, g in zip(tensors, grads):
                t.grad = torch.from_numpy(g)
            return torch.tensor(loss)

        opt.step(closure)
        for a, e in zip(views, arrays):
            assert_bits_equal(a, e)
        assert_bits_equal(opt.state[tensors[0]]["d"].numpy(), numpy_opt.state[0]["d"])


def test_fastopt_torch_lbfgs_rejects_bad_input_before_changing_anything():
    torch = pytest.importorskip("torch")
    import fastopt.torch

    with pytest.raises(ValueError, match="Invalid learning rate"):
        fastopt.torch.LBFGS([torch.zeros(2)], lr=-1)
    with pytest.raises(ValueError, match="line_search_fn must be None or 'strong_wolfe'"):
        fastopt.torch.LBFGS([torch.zeros(2)], line_search_fn="armijo")
    with pytest.raises(ValueError, match="per-parameter options"):
        fastopt.torch.LBFGS([{"params": [torch.zeros(2)]}, {"params": [torch.zeros(2)]}])
    with pytest.raises(TypeError, match=r"params\[1\] has dtype torch.float32"):
        fastopt.torch.LBFGS([torch.zeros(2, dtype=torch.float64), torch.zeros(2)])
    params, inputs, targets = small_net(2, torch.float64)
    params = [p.requires_grad_() for p in params]
    opt = fastopt.torch.LBFGS(params, max_iter=3)
    opt.step(net_closure(opt, params, inputs, targets))
    before = [p.detach().clone() for p in params]
    state_before = {k: v for k, v in opt.state[params[0]].items()}
    with pytest.raises(TypeError, match="closure must be callable"):
        opt.step(None)
    good, calls = net_closure(opt, params, inputs, targets), [0]

    def failing_second_call():  # torch refuses a .grad of the wrong size or dtype: a closure that raises
        calls[0] += 1
        if calls[0] == 2:
            raise FloatingPointError("the model diverged")
        return good()

    with pytest.raises(FloatingPointError, match="diverged"):
        opt.step(failing_second_call)
    for p, b in zip(params, before):
        assert torch.equal(p.detach(), b)
    assert opt.state[params[0]].keys() == state_before.keys()
    assert all(opt.state[params[0]][k] is v for k, v in state_before.items())


# --------------------------------------------------------------------------------------------
# python -m fastopt show lbfgs, bench -o LBFGS
# --------------------------------------------------------------------------------------------
def test_show_prints_the_equations_the_control_flow_and_the_three_kernels(capsys, tmp_path):
    from fastopt import cli

    assert cli.main(["show", "lbfgs", "--width", "200"]) == 0
    out = capsys.readouterr().out
    for tag in range(1, 13):
        assert f"({tag})" in out
    assert "control  fastopt/lbfgs/__init__.py" in out and "def _run(" in out
    for backend, path in (("reference", "reference.py"), ("numba", "_numba.py"), ("cython", "_cython.pyx")):
        assert f"{backend}  fastopt/lbfgs/{path}" in out
    assert out.count("def add_scaled_then_dot(") == 3
    page = tmp_path / "lbfgs.html"
    assert cli.main(["show", "LBFGS", "--html", str(page)]) == 0
    html = page.read_text()
    assert 'class="unparsed"' not in html and "<h2>The control flow</h2>" in html
    assert "<h2>Symbols</h2>" in html and "<h2>References</h2>" in html


def test_bench_times_one_step_against_torch(capsys):
    from fastopt import cli

    assert cli.main(["bench", "-o", "LBFGS", "-n", "4096", "--quick", "--torch-models", "none", "--small", "none",
                     "--json", "-"]) == 0
    import json

    document = json.loads(capsys.readouterr().out)
    rows = [r for r in document["results"] if r["scenario"] == "closure"]
    assert {r["impl"] for r in rows} >= {"reference", "numba", "cython"}
    # The sanitizer pass of CI has no torch: the rows are then fastopt's alone, with no ratio.
    if importlib.util.find_spec("torch") is None:
        assert "torch default" not in {r["impl"] for r in rows}
        return
    assert "torch default" in {r["impl"] for r in rows}
    assert all(r["speedup_vs_torch"] > 0 for r in rows if r["impl"] != "torch default")
