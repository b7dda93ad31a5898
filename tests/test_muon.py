"""Muon (fastopt.muon): the three twins bit for bit (params and momentum buffers, float32 and
float64, Hypothesis on odd shapes, 1 x N, N x 1, empty matrices and extreme values), against
torch.optim.Muon's algorithm with its bfloat16 cast removed (float64, <= 1e-10), matrices only,
and the checks of its hyperparameters (nothing changes when one is refused).

The matrix products' own order (rule 4 of fastopt._sums) is tested in test_sums.py.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp

import fastopt
from fastopt import _threads

from .specs import DTYPES, FAST_BACKENDS, assert_bits_equal, assert_same_state
from .strategies import any_elements, finite_elements

ORACLE_TOLERANCE = 1e-10  # float64, relative to each matrix's largest element (the bound)

OPTIONS = [
    dict(lr=0.02),
    dict(lr=0.02, nesterov=False, momentum=0.3, weight_decay=0.01, adjust_lr_fn="match_rms_adamw"),
    dict(lr=0.05, momentum=0.9, weight_decay=0.0, ns_steps=3, eps=1e-5, adjust_lr_fn="original",
         ns_coefficients=(2.0, -1.5, 0.5)),
]


def run(backend, initial, grads, dtype=None, **options):
    params = [p.copy() for p in initial]
    opt = fastopt.Muon(params, backend=backend, **options)
    for step_grads in grads:
        opt.step(step_grads)
    return params, opt


# --------------------------------------------------------------------------------------------
# Three twins, bit for bit
# --------------------------------------------------------------------------------------------
muon_options = st.fixed_dictionaries(dict(
    lr=st.one_of(st.sampled_from([1e-3, 0.02, 0.1]), st.floats(0.0, 1.0)),
    weight_decay=st.one_of(st.sampled_from([0.0, 0.1]), st.floats(0.0, 1.0)),
    momentum=st.one_of(st.sampled_from([0.0, 0.5, 0.95]), st.floats(0.0, 1.5)),
    nesterov=st.booleans(),
    ns_steps=st.integers(0, 6),
    eps=st.sampled_from([0.0, 1e-7, 1e-3]),
    adjust_lr_fn=st.sampled_from([None, "original", "match_rms_adamw"]),
))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@settings(deadline=None)
@given(data=st.data())
def test_twins_are_bit_identical(backend, dtype, data, measured):
    options = data.draw(muon_options)
    elements = data.draw(st.sampled_from([finite_elements, any_elements]))(dtype)
    shapes = data.draw(st.lists(st.tuples(st.integers(0, 19), st.integers(0, 19)), min_size=1, max_size=3))
    steps = data.draw(st.integers(1, 3))
    initial = [data.draw(hynp.arrays(dtype, shape, elements=elements)) for shape in shapes]
    grads = [[data.draw(hynp.arrays(dtype, shape, elements=elements)) for shape in shapes] for _ in range(steps)]
    expected, expected_opt = run("reference", initial, grads, **options)
    got, got_opt = run(backend, initial, grads, **options)
    for a, b in zip(got, expected):
        assert_bits_equal(a, b, f"{backend} {options}")
    assert_same_state(got_opt, expected_opt, f"Muon {backend}")
    measured["examples"]["Muon twins"] += 1


# Sizes across the compiled twins' edges: odd rows and columns (2 x 2 tiles), lengths along k
# not a multiple of 8, tall matrices (transposed), 1 x N and N x 1 (a 1 x 1 Gram matrix).
LARGE_SHAPES = [(67, 130), (130, 67), (1, 1000), (1000, 1), (257, 3), (64, 64), (9, 17)]


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", ["finite", "extreme"])
def test_muon_on_large_odd_shapes_is_bit_identical(backend, dtype, values):
    rng = np.random.default_rng(3)
    initial = [rng.standard_normal(shape).astype(dtype) for shape in LARGE_SHAPES]
    grads = [[rng.standard_normal(shape).astype(dtype) for shape in LARGE_SHAPES] for _ in range(3)]
    if values == "extreme":  # an inf and a NaN in one gradient, huge and subnormal values in others
        grads[1][0][5, 7], grads[1][0][60, 100] = np.inf, np.nan
        grads[0][1][::3] = np.finfo(dtype).max / 4
        grads[2][4][:, 1] = np.finfo(dtype).smallest_subnormal
        initial[5][::2] = -np.finfo(dtype).max / 2
    for options in OPTIONS:
        expected, expected_opt = run("reference", initial, grads, **options)
        got, got_opt = run(backend, initial, grads, **options)
        for a, b in zip(got, expected):
            assert_bits_equal(a, b, f"{backend} {options}")
        assert_same_state(got_opt, expected_opt, f"Muon {backend}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_the_bits_do_not_depend_on_the_thread_count(backend):
    """Each parameter is one kernel call on one thread: set_num_threads changes nothing."""
    rng = np.random.default_rng(4)
    initial = [rng.standard_normal((90, 70)).astype(np.float32)]
    grads = [[rng.standard_normal((90, 70)).astype(np.float32)] for _ in range(2)]
    before = (_threads._num_threads, _threads._min_size)
    results = []
    try:
        for threads in (1, 2):
            fastopt.set_num_threads(threads, min_size=1)
            results.append(run(backend, initial, grads)[0][0])
    finally:
        fastopt.set_num_threads(*before)
    assert_bits_equal(results[1], results[0])


# --------------------------------------------------------------------------------------------
# The oracle: torch.optim.Muon's algorithm without its bfloat16 cast
# --------------------------------------------------------------------------------------------
@pytest.fixture
def torch_muon_without_bfloat16(monkeypatch):
    """torch.optim.Muon with its Newton-Schulz function replaced by the same steps in the
    tensor's own dtype (torch's is ``grad.bfloat16()`` first; everything else as torch's)."""
    torch = pytest.importorskip("torch")
    from torch.optim import _muon

    def newton_schulz_in_dtype(grad, ns_coefficients, ns_steps, eps):
        a, b, c = ns_coefficients
        x = grad.T if grad.size(0) > grad.size(1) else grad
        x = x / x.norm().clamp(min=eps)
        for _ in range(ns_steps):
            gram = x @ x.T
            polynomial = torch.addmm(gram, gram, gram, beta=b, alpha=c)
            x = torch.addmm(x, polynomial, x, beta=a)
        return x.T if grad.size(0) > grad.size(1) else x

    monkeypatch.setattr(_muon, "_zeropower_via_newtonschulz", newton_schulz_in_dtype)
    return torch


ORACLE_SHAPES = [(7, 13), (13, 7), (64, 48), (1, 9), (9, 1), (33, 33)]


def worst_relative(ours, theirs) -> float:
    return max(float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(np.float64).tiny)) for a, b in zip(ours, theirs))


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("options", OPTIONS, ids=["defaults", "plain-momentum-moonshot", "all-options"])
def test_muon_matches_torch_without_the_bfloat16_cast(torch_muon_without_bfloat16, options, backend, measured):
    torch = torch_muon_without_bfloat16
    rng = np.random.default_rng(7)
    initial = [rng.standard_normal(shape) for shape in ORACLE_SHAPES]
    grads = [[rng.standard_normal(shape) * np.exp(rng.uniform(-3, 2)) for shape in ORACLE_SHAPES] for _ in range(10)]
    ours, opt = run(backend, initial, grads, **options)
    tensors = [torch.tensor(p, requires_grad=True) for p in initial]
    theirs_opt = torch.optim.Muon(tensors, **options)
    for step_grads in grads:
        for tensor, grad in zip(tensors, step_grads):
            tensor.grad = torch.tensor(grad)
        theirs_opt.step()
    theirs = [t.detach().numpy() for t in tensors]
    worst = worst_relative(ours, theirs)
    buffers = worst_relative([opt.state[i]["momentum_buffer"] for i in range(len(tensors))],
                             [theirs_opt.state[t]["momentum_buffer"].numpy() for t in tensors])
    key = "torch.optim.Muon without bfloat16, float64"
    measured["conventions_worst"][key] = max(measured["conventions_worst"].get(key, 0.0), worst, buffers)
    assert worst <= ORACLE_TOLERANCE and buffers <= ORACLE_TOLERANCE, (worst, buffers)


def test_newton_schulz_squeezes_the_singular_values():
    """What the iteration is for: singular values spanning 2.5 orders of magnitude end in a
    narrow band around 1 (the default coefficients' band, about [0.68, 1.2]). Five steps
    multiply a small singular value by at most a^5 = 3.4445^5, about 490: one below about 1e-3
    of the norm stays small (measured: 1e-3 ends at 0.26)."""
    rng = np.random.default_rng(8)
    u, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    v, _ = np.linalg.qr(rng.standard_normal((60, 40)))
    grad = (u * np.logspace(0, -2.5, 40)) @ v.T  # 40 x 60, singular values 1 .. 3e-3
    param = np.zeros((40, 60))
    fastopt.Muon([param], lr=1.0, weight_decay=0.0, momentum=0.0, nesterov=False).step([grad])
    singular = np.linalg.svd(-param, compute_uv=False)
    assert 0.6 <= singular.min() and singular.max() <= 1.25, singular


# --------------------------------------------------------------------------------------------
# Matrices only; bad hyperparameters
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3,), (), (2, 3, 4)])
def test_a_parameter_that_is_not_a_matrix_is_refused_naming_it(shape):
    with pytest.raises(ValueError, match=r"params\[1\] has shape .*Muon only supports 2D parameters"):
        fastopt.Muon([np.zeros((2, 2)), np.zeros(shape)])
    opt = fastopt.Muon([np.zeros((2, 2))])
    with pytest.raises(ValueError, match=r"params\[1\] has shape"):
        opt.add_param_group({"params": [np.zeros(shape)]})
    assert len(opt.param_groups) == 1


BAD_OPTIONS = [
    (dict(lr=-1.0), ValueError, "Learning rate should be >= 0 but is: -1.0"),
    (dict(lr=float("nan")), ValueError, "Learning rate should be >= 0 but is: nan"),
    (dict(lr=float("inf")), ValueError, "lr must be finite"),
    (dict(momentum=-0.1), ValueError, "momentum should be >= 0 but is: -0.1"),
    (dict(weight_decay=-0.1), ValueError, "weight decay should be >= 0 but is: -0.1"),
    (dict(adjust_lr_fn="rms"), ValueError, "Adjust learning rate function rms is not supported .*adjust_lr_fn"),
    (dict(nesterov=1), TypeError, "nesterov must be a bool"),
    (dict(ns_coefficients=(1.0, 2.0)), ValueError, r"ns_coefficients must be a tuple of exactly 3 values"),
    (dict(ns_coefficients=(1.0, "b", 2.0)), TypeError, r"ns_coefficients \(b\)"),
    (dict(ns_coefficients=(1.0, float("inf"), 2.0)), ValueError, r"ns_coefficients \(b\) must be finite"),
    (dict(eps=-1e-7), ValueError, "eps should be >= 0"),
    (dict(ns_steps=100), ValueError, r"Number of steps must be less than 100 .*ns_steps = 100"),
    (dict(ns_steps=-1), ValueError, "ns_steps must be >= 0"),
    (dict(ns_steps=2.0), TypeError, "ns_steps must be an int"),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD_OPTIONS)
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_bad_hyperparameters_are_refused_and_nothing_changes(options, error, message, backend):
    with pytest.raises(error, match=message):
        fastopt.Muon([np.zeros((2, 3))], backend=backend, **options)
    # assigned between steps: the step refuses it before anything changes
    rng = np.random.default_rng(9)
    params = [rng.standard_normal((4, 5)), rng.standard_normal((5, 4))]
    opt = fastopt.Muon(params, backend=backend)
    opt.step([rng.standard_normal((4, 5)), rng.standard_normal((5, 4))])
    before = [p.copy() for p in params], [opt.state[i]["momentum_buffer"].copy() for i in range(2)]
    opt.param_groups[0].update(options)
    with pytest.raises(error, match=message):
        opt.step([rng.standard_normal((4, 5)), rng.standard_normal((5, 4))])
    for p, b in zip(params, before[0]):
        assert_bits_equal(p, b)
    for i, b in enumerate(before[1]):
        assert_bits_equal(opt.state[i]["momentum_buffer"], b)


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_an_empty_matrix_steps_without_changing_anything(backend):
    params = [np.zeros((0, 5)), np.ones((3, 0)), np.ones((2, 2))]
    opt = fastopt.Muon(params, backend=backend)
    opt.step([np.zeros((0, 5)), np.ones((3, 0)), np.ones((2, 2))])
    assert opt.state[0]["momentum_buffer"].shape == (0, 5) and opt.state[1]["momentum_buffer"].shape == (3, 0)
    assert not np.array_equal(params[2], np.ones((2, 2)))


def test_state_is_torchs_momentum_buffer_only():
    param = np.ones((3, 4), np.float32)
    opt = fastopt.Muon([param])
    opt.step([np.ones((3, 4), np.float32)])
    assert list(opt.state[0]) == ["momentum_buffer"]
    assert opt.state[0]["momentum_buffer"].dtype == np.float32 and opt.state[0]["momentum_buffer"].shape == (3, 4)


# --------------------------------------------------------------------------------------------
# fastopt.torch.Muon
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("options", OPTIONS, ids=["defaults", "plain-momentum-moonshot", "all-options"])
def test_fastopt_torch_muon_matches_torch_without_the_bfloat16_cast(torch_muon_without_bfloat16, options, backend,
                                                                    measured):
    """Two models side by side (float64), trained on the same batches: fastopt.torch.Muon on the
    matrices, and torch.optim.Muon (its Newton-Schulz in float64) on a copy."""
    torch = torch_muon_without_bfloat16
    import fastopt.torch as ft

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 20, bias=False), torch.nn.Tanh(), torch.nn.Linear(20, 3, bias=False)).double()
    twin = torch.nn.Sequential(torch.nn.Linear(12, 20, bias=False), torch.nn.Tanh(), torch.nn.Linear(20, 3, bias=False)).double()
    twin.load_state_dict(model.state_dict())
    ours, theirs = ft.Muon(model.parameters(), backend=backend, **options), torch.optim.Muon(twin.parameters(), **options)
    for _ in range(15):
        x, y = torch.randn(32, 12, dtype=torch.float64), torch.randn(32, 3, dtype=torch.float64)
        for net, opt in ((model, ours), (twin, theirs)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    worst = worst_relative([p.detach().numpy() for p in model.parameters()], [p.detach().numpy() for p in twin.parameters()])
    key = "torch.optim.Muon without bfloat16, float64 (fastopt.torch)"
    measured["conventions_worst"][key] = max(measured["conventions_worst"].get(key, 0.0), worst)
    assert worst <= ORACLE_TOLERANCE, worst


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_fastopt_torch_muon_is_fastopt_muon_bit_for_bit(backend):
    """The adapter adds no arithmetic: float32 tensors step to the NumPy class's bits."""
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    rng = np.random.default_rng(10)
    shapes = [(5, 7), (40, 3), (1, 30)]
    initial = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    options = dict(lr=0.03, weight_decay=0.05, adjust_lr_fn="match_rms_adamw")
    expected, expected_opt = run(backend, initial, grads, **options)
    tensors = [torch.tensor(p, requires_grad=True) for p in initial]
    opt = ft.Muon(tensors, backend=backend, **options)
    for step_grads in grads:
        for tensor, grad in zip(tensors, step_grads):
            tensor.grad = torch.tensor(grad)
        opt.step()
    for i, (tensor, p) in enumerate(zip(tensors, expected)):
        assert_bits_equal(tensor.detach().numpy(), p)
        assert_bits_equal(opt.state[tensor]["momentum_buffer"].numpy(), expected_opt.state[i]["momentum_buffer"])


def test_state_dicts_move_between_torch_and_fastopt_torch(torch_muon_without_bfloat16):
    """torch's layout (``momentum_buffer`` only, the group's hyperparameters): a state dict saved
    by one loads in the other, and the next steps agree (float64, without torch's cast)."""
    torch = torch_muon_without_bfloat16
    import fastopt.torch as ft

    rng = np.random.default_rng(11)
    initial = [rng.standard_normal((6, 4)), rng.standard_normal((3, 8))]
    grads = [[rng.standard_normal(p.shape) for p in initial] for _ in range(4)]

    def stepped(cls, params, step_grads, state=None):
        opt = cls(params, lr=0.02)
        if state is not None:
            opt.load_state_dict(state)
        for gs in step_grads:
            for p, g in zip(params, gs):
                p.grad = torch.tensor(g)
            opt.step()
        return opt

    theirs = [torch.tensor(p, requires_grad=True) for p in initial]
    saved = stepped(torch.optim.Muon, theirs, grads[:2]).state_dict()
    ours = [t.detach().clone().requires_grad_() for t in theirs]
    ours_opt = stepped(ft.Muon, ours, grads[2:], saved)
    stepped(torch.optim.Muon, theirs, grads[2:], saved)
    assert worst_relative([p.detach().numpy() for p in ours], [p.detach().numpy() for p in theirs]) <= ORACLE_TOLERANCE
    back = ours_opt.state_dict()
    assert set(back["state"][0]) == {"momentum_buffer"}
    # (torch.optim.Optimizer adds ``differentiable=False`` to a subclass's defaults; Muon's has none)
    assert set(back["param_groups"][0]) - {"differentiable"} == set(saved["param_groups"][0])
    torch.optim.Muon([t.detach().clone().requires_grad_() for t in ours], lr=0.02).load_state_dict(back)


def test_fastopt_torch_muon_refuses_what_torch_refuses():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\] has shape \(3,\).*2D parameters"):
        ft.Muon([torch.zeros(2, 3, requires_grad=True), torch.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError, match="Learning rate should be >= 0 but is: -1"):
        ft.Muon([torch.zeros(2, 3, requires_grad=True)], lr=-1)
    with pytest.raises(ValueError, match="Adjust learning rate function nope is not supported"):
        ft.Muon([torch.zeros(2, 3, requires_grad=True)], adjust_lr_fn="nope")
    p = torch.zeros(2, 3, requires_grad=True)
    opt = ft.Muon([p])
    p.grad = torch.ones(2, 3)
    opt.param_groups[0]["momentum"] = -0.5
    with pytest.raises(ValueError, match="momentum should be >= 0"):
        opt.step()
    assert not opt.state and torch.equal(p.detach(), torch.zeros(2, 3))


# --------------------------------------------------------------------------------------------
# The command line: show and bench know Muon (it is not in fastopt.OPTIMIZERS: matrices only)
# --------------------------------------------------------------------------------------------
def test_show_explains_muon(capsys):
    from fastopt import cli

    assert "Muon" not in fastopt.OPTIMIZERS and fastopt.MATRIX_OPTIMIZERS["Muon"] is fastopt.Muon
    assert cli.main(["show", "muon", "--width", "120"]) == 0
    out = capsys.readouterr().out
    for text in ("fastopt.muon", "(6)", "X_{s+1} = a * X_s + G_s X_s", "matmul_rows", "reference.py", "_cython.pyx"):
        assert text in out, text


def test_bench_times_muon_only_when_named():
    import argparse

    from fastopt.cli import bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert "Muon" not in bench.Settings(parser.parse_args([])).optimizers
    assert bench.Settings(parser.parse_args(["-o", "muon"])).optimizers == ["Muon"]
    from fastopt.cli.bench import workloads

    assert workloads.matrix_shape(65536) == (256, 256) and workloads.matrix_shape(1048576) == (1024, 1024)
    assert list(workloads.torch_variants("Muon")) == ["bf16", "no-bf16"]


def test_three_kernels_share_one_signature():
    import inspect

    from fastopt.muon import _cython, _numba, reference

    expected = list(inspect.signature(reference.muon_update).parameters)
    assert list(inspect.signature(_numba.muon_update.py_func).parameters) == expected
    assert list(inspect.signature(_cython.muon_update).parameters) == expected


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_a_kernel_called_with_a_wrong_workspace_raises(backend):
    """The kernels check their arrays' lengths (no out-of-bounds write from a short workspace)."""
    from fastopt._backends import get_kernel

    kernel = get_kernel("muon", backend)
    param, grad, buffer = np.zeros(12), np.ones(12), np.zeros(12)
    scalars = (True, 0.95, 0.05, 3.4445, -4.775, 2.0315, 1e-7, 5, 1.0, 0.01, 0, 1)
    with pytest.raises(ValueError, match="workspace"):
        kernel(param, grad, buffer, np.empty(10), 3, 4, *scalars)
    assert not param.any() and not buffer.any()
