"""Schedule-Free AdamW: train()/eval(), the group counters, and agreement with the authors' package.

The steps themselves are covered by the generic tests (test_agreement.py's Hypothesis properties,
the API, checkpoint, multi-tensor and fuzz tests run ``fastopt.ScheduleFreeAdamW`` from
``specs.SPECS``). Here: the three backends stay bit-identical through mode switches (Hypothesis),
a step in eval mode raises, checkpoints round-trip the mode and the counters, fastopt.torch gives
fastopt's bits, and both agree with ``schedulefree.AdamWScheduleFree`` (float64, relative
difference per tensor ``max|fastopt - package| / max|package|`` at most 1e-12).
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from specs import DTYPES, FAST_BACKENDS, SPECS, assert_bits_equal, assert_same_state

import fastopt

TOLERANCE = 1e-12
SPEC = SPECS["ScheduleFreeAdamW"]


def _relative(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if not (np.isfinite(actual).all() and np.isfinite(expected).all()):
        return float("inf")
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    diff = np.max(np.abs(actual - expected)) if expected.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


# --------------------------------------------------------------------------------------------
# The three backends, through steps and switches
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@settings(max_examples=60, deadline=None)
@given(
    options=SPEC.options,
    dtype=st.sampled_from(DTYPES),
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    actions=st.lists(st.sampled_from(["step"] * 3 + ["eval", "train"]), min_size=1, max_size=10),
    seed=st.integers(0, 2**32 - 1),
)
def test_backends_are_bit_identical_through_train_and_eval(backend, options, dtype, sizes, actions, seed, measured):
    rng = np.random.default_rng(seed)
    initial = [(rng.standard_normal(n) * 10.0 ** rng.integers(-3, 3)).astype(dtype) for n in sizes]
    ref_params, fast_params = [p.copy() for p in initial], [p.copy() for p in initial]
    reference = fastopt.ScheduleFreeAdamW(ref_params, backend="reference", **options)
    fast = fastopt.ScheduleFreeAdamW(fast_params, backend=backend, **options)
    for action in actions:
        if action == "step":
            grads = [rng.standard_normal(n).astype(dtype) if rng.random() < 0.9 else None for n in sizes]
            for opt in (reference, fast):
                if opt.param_groups[0]["train_mode"]:
                    opt.step(grads)
                else:
                    with pytest.raises(RuntimeError, match="eval mode"):
                        opt.step(grads)
        else:
            getattr(reference, action)()
            getattr(fast, action)()
        for a, b in zip(fast_params, ref_params):
            assert_bits_equal(a, b, f"{backend} after {action}")
        assert_same_state(fast, reference, backend)
        assert fast.param_groups[0]["k"] == reference.param_groups[0]["k"]
        assert fast.param_groups[0]["weight_sum"] == reference.param_groups[0]["weight_sum"]
    measured["examples"][f"ScheduleFreeAdamW-{backend} (train/eval)"] += 1


@pytest.mark.parametrize("backend", fastopt.available_backends())
@pytest.mark.parametrize("dtype", DTYPES)
def test_eval_then_train_gives_back_y_and_the_first_step_lands_on_z(backend, dtype):
    rng = np.random.default_rng(0)
    p = rng.standard_normal(50).astype(dtype)
    opt = fastopt.ScheduleFreeAdamW([p], lr=0.1, backend=backend)
    before = p.copy()
    opt.eval()  # no z yet: nothing moves
    opt.train()
    assert_bits_equal(p, before)
    opt.step([rng.standard_normal(50).astype(dtype)])
    # c_2 = 1 on the first step: y = lerp(y, z, 1) = z_0 exactly, then y + lr * (beta1 * 0 - 1) * u
    # and z = z_0 - lr * u, so y and z are equal after it
    assert_bits_equal(p, opt.state[0]["z"])
    for _ in range(4):
        opt.step([rng.standard_normal(50).astype(dtype)])
    y = p.copy()
    opt.eval()
    z = opt.state[0]["z"]
    x = p.copy()
    np.testing.assert_allclose(x, (y - 0.1 * z) / 0.9, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    opt.eval()  # already in eval mode: nothing moves
    assert_bits_equal(p, x)
    opt.train()
    np.testing.assert_allclose(p, y, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


# --------------------------------------------------------------------------------------------
# The mode, the counters, checkpoints
# --------------------------------------------------------------------------------------------
def test_a_step_in_eval_mode_raises_and_changes_nothing():
    p = np.ones(3)
    opt = fastopt.ScheduleFreeAdamW([{"params": [p]}, {"params": [np.ones(2)]}])
    opt.step([np.ones(3), np.ones(2)])
    opt.eval()
    saved = copy.deepcopy(opt.state_dict())
    with pytest.raises(RuntimeError, match=r"ScheduleFreeAdamW\.step\(\) called in eval mode \(param_groups\[0\]\['train_mode'\] is False\): call optimizer\.train\(\)"):
        opt.step([np.ones(3), np.ones(2)])
    opt.param_groups[0]["train_mode"] = True  # the second group only: still refused (the package looks at the first)
    with pytest.raises(RuntimeError, match=r"param_groups\[1\]\['train_mode'\] is False"):
        opt.step([np.ones(3), np.ones(2)])
    opt.param_groups[0]["train_mode"] = False
    after = opt.state_dict()
    assert after["param_groups"] == saved["param_groups"]
    assert_bits_equal(after["state"][0]["z"], saved["state"][0]["z"])


@pytest.mark.parametrize(("key", "value", "error", "message"), [
    ("k", -1, ValueError, r"param_groups\[0\]\['k'\] must be an int in \[0, 2\*\*62 - 1\), got int -1"),
    ("k", 1.0, ValueError, r"param_groups\[0\]\['k'\] must be an int in \[0, 2\*\*62 - 1\), got float 1.0"),
    ("train_mode", 1, TypeError, r"param_groups\[0\]\['train_mode'\] must be a bool, got int 1"),
    ("weight_sum", -1.0, ValueError, r"param_groups\[0\]\['weight_sum'\] must be >= 0, got -1.0"),
    ("weight_sum", float("nan"), ValueError, r"param_groups\[0\]\['weight_sum'\] must be finite, got nan"),
    ("lr_max", "0.1", TypeError, r"param_groups\[0\]\['lr_max'\] must be a real number, got str '0.1'"),
    ("scheduled_lr", float("inf"), ValueError, r"param_groups\[0\]\['scheduled_lr'\] must be finite, got inf"),
])
def test_bad_group_counters_are_named_and_change_nothing(key, value, error, message):
    p = np.ones(3)
    opt = fastopt.ScheduleFreeAdamW([p])
    opt.step([np.ones(3)])
    before = p.copy()
    opt.param_groups[0][key] = value
    with pytest.raises(error, match=f"^{message}$"):
        opt.step([np.ones(3)])
    assert_bits_equal(p, before)


def test_bad_hyperparameters_name_the_argument():
    with pytest.raises(ValueError, match=r"^Invalid warmup_steps value: -1$"):
        fastopt.ScheduleFreeAdamW([np.ones(2)], warmup_steps=-1)
    with pytest.raises(TypeError, match=r"^r must be a real number, got str 'x'$"):
        fastopt.ScheduleFreeAdamW([np.ones(2)], r="x")
    with pytest.raises(ValueError, match=r"^Invalid beta parameter at index 0: 0.0 \(Schedule-Free needs beta1 > 0"):
        fastopt.ScheduleFreeAdamW([np.ones(2)], betas=(0.0, 0.9))
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'momentum'"):
        fastopt.ScheduleFreeAdamW([np.ones(2)], momentum=0.9)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_checkpoints_round_trip_the_mode_and_the_counters(mode):
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(5), rng.standard_normal(4)]
    options = dict(lr=0.05, warmup_steps=3, r=1.0)
    opt = fastopt.ScheduleFreeAdamW([{"params": params[:1]}, {"params": params[1:], "lr": 0.02}], **options)
    for _ in range(4):
        opt.step([rng.standard_normal(5), rng.standard_normal(4)])
    getattr(opt, mode)()
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    copies = [p.copy() for p in params]
    other = fastopt.ScheduleFreeAdamW([{"params": copies[:1]}, {"params": copies[1:]}], **options)
    other.load_state_dict(saved)
    assert other.param_groups[1]["lr"] == 0.02
    for key in ("k", "train_mode", "weight_sum", "lr_max", "scheduled_lr"):
        assert [g[key] for g in other.param_groups] == [g[key] for g in opt.param_groups], key
    assert other.param_groups[0]["k"] == 4 and other.param_groups[0]["train_mode"] == (mode == "train")
    for o in (opt, other):
        o.train()
        for _ in range(3):
            o.step([np.full(5, 0.5), np.full(4, -0.5)])
        o.eval()
    for a, b in zip(copies, params):
        assert_bits_equal(a, b)
    assert_same_state(other, opt)


def test_a_checkpoint_with_bad_counters_is_refused_whole():
    opt = fastopt.ScheduleFreeAdamW([np.ones(3)])
    opt.step([np.ones(3)])
    saved = opt.state_dict()
    saved["param_groups"][0]["k"] = -2
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=r"\['k'\] must be an int"):
        opt.load_state_dict(saved)
    assert opt.param_groups[0]["k"] == before["param_groups"][0]["k"] == 1


def test_defaults_are_the_authors():
    assert fastopt.ScheduleFreeAdamW([np.zeros(1)]).defaults == dict(
        lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, warmup_steps=0, r=0.0, weight_lr_power=2.0,
        maximize=False, k=0, train_mode=True, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0,
    )


# --------------------------------------------------------------------------------------------
# fastopt.torch and the authors' package
# --------------------------------------------------------------------------------------------
CASES = [
    dict(lr=0.01),
    dict(lr=0.01, warmup_steps=5, weight_decay=0.05),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, warmup_steps=3, r=0.5, weight_lr_power=1.0, weight_decay=0.1),
]
STEPS = 16
SWITCH_AFTER = (4, 9)  # eval() then train() after these steps (inside and after the warmup)


def _package():
    return pytest.importorskip("schedulefree").AdamWScheduleFree


def _model_params(torch, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(7, 5), (5,), (3, 7), (3,), ()]
    return [torch.randn(shape, dtype=dtype, generator=g).requires_grad_() for shape in shapes]


def _grads(torch, params, step, dtype):
    g = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(p.shape, dtype=dtype, generator=g) * (1 + step % 3) for p in params]


def _train(torch, optimizer, params, dtype, steps, start=0):
    for step in range(start, start + steps):
        grads = _grads(torch, params, step, dtype)
        for p, g in zip(params, grads):
            p.grad = g.clone()  # the package divides p.grad in place
        optimizer.step()
        if step in SWITCH_AFTER:
            optimizer.eval()
            optimizer.train()


def _groups(params, options, split):
    if not split:
        return params
    return [{"params": params[:2]}, {"params": params[2:], "lr": options["lr"] * 0.5, "warmup_steps": 2}]


def _worst(torch, ours, theirs, optimizer, reference) -> float:
    worst = 0.0
    for p, q in zip(ours, theirs):
        worst = max(worst, _relative(p.detach().numpy(), q.detach().numpy()))
        assert set(optimizer.state[p]) == set(reference.state[q]) == {"z", "exp_avg_sq"}
        for key in ("z", "exp_avg_sq"):
            worst = max(worst, _relative(optimizer.state[p][key].numpy(), reference.state[q][key].numpy()))
    return worst


@pytest.mark.parametrize("backend", fastopt.available_backends())
@pytest.mark.parametrize("split", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("options", CASES, ids=["lr", "warmup-wd", "everything"])
def test_training_matches_the_authors_package(options, split, backend, measured):
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    package = _package()
    for dtype, tolerance in ((torch.float64, TOLERANCE), (torch.float32, 1e-5)):
        ours, theirs = _model_params(torch, dtype), _model_params(torch, dtype)
        optimizer = ft.ScheduleFreeAdamW(_groups(ours, options, split), backend=backend, **options)
        reference = package(_groups(theirs, options, split), foreach=False, **options)
        optimizer.train()
        reference.train()
        _train(torch, optimizer, ours, dtype, STEPS)
        _train(torch, reference, theirs, dtype, STEPS)
        optimizer.eval()
        reference.eval()
        worst = _worst(torch, ours, theirs, optimizer, reference)
        key = f"ScheduleFreeAdamW (schedulefree, {str(dtype).removeprefix('torch.')})"
        measured["torch_worst"][key] = max(measured["torch_worst"][key], worst)
        assert worst <= tolerance, f"{options} {dtype}: relative difference {worst:.2e}"
        for group, theirs_group in zip(optimizer.param_groups, reference.param_groups):
            for name in ("k", "train_mode", "weight_sum", "lr_max", "scheduled_lr"):
                assert group[name] == theirs_group[name], name  # the same float64 arithmetic
        moved = max(_relative(p.detach().numpy(), q.detach().numpy()) for p, q in zip(ours, _model_params(torch, dtype)))
        assert moved > 1e-3, "the parameters barely moved: the comparison would prove nothing"


@pytest.mark.parametrize("backend", fastopt.available_backends())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fastopt_torch_gives_the_numpy_class_bits(backend, dtype):
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    tdtype = getattr(torch, dtype)
    options = CASES[2]
    params = _model_params(torch, tdtype)
    arrays = [p.detach().numpy().copy() for p in params]
    optimizer = ft.ScheduleFreeAdamW(params, backend=backend, **options)
    numpy_opt = fastopt.ScheduleFreeAdamW(arrays, backend=backend, **options)
    optimizer.train()
    for step in range(STEPS):
        grads = _grads(torch, params, step, tdtype)
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        numpy_opt.step([g.numpy() for g in grads])
        if step in SWITCH_AFTER:
            optimizer.eval()
            numpy_opt.eval()
            for p, a in zip(params, arrays):
                assert_bits_equal(p.detach().numpy(), a, "in eval mode")
            optimizer.train()
            numpy_opt.train()
    for index, (p, a) in enumerate(zip(params, arrays)):
        assert_bits_equal(p.detach().numpy(), a)
        for key in ("z", "exp_avg_sq"):
            assert_bits_equal(optimizer.state[p][key].numpy(), numpy_opt.state[index][key], key)
    assert optimizer.param_groups[0]["weight_sum"] == numpy_opt.param_groups[0]["weight_sum"]


@pytest.mark.parametrize("direction", ["package-to-fastopt", "fastopt-to-package"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_state_dict_moves_between_the_authors_package_and_fastopt(direction, mode):
    """8 steps with one, saved in ``mode``, loaded by the other, 8 more: as 16 steps of the package."""
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    package = _package()
    options = CASES[1]
    first, second = (package, ft.ScheduleFreeAdamW) if direction == "package-to-fastopt" else (ft.ScheduleFreeAdamW, package)
    dtype = torch.float64
    params = _model_params(torch, dtype)
    optimizer = first(params, **options)
    optimizer.train()
    _train(torch, optimizer, params, dtype, STEPS // 2)
    getattr(optimizer, mode)()
    saved = copy.deepcopy(optimizer.state_dict())
    assert saved["param_groups"][0]["train_mode"] == (mode == "train") and saved["param_groups"][0]["k"] == STEPS // 2
    continued = second(params, **options)
    continued.load_state_dict(saved)
    assert continued.param_groups[0]["train_mode"] == (mode == "train")
    continued.train()
    _train(torch, continued, params, dtype, STEPS - STEPS // 2, start=STEPS // 2)
    continued.eval()
    uninterrupted = _model_params(torch, dtype)
    reference = package(uninterrupted, **options)
    reference.train()
    _train(torch, reference, uninterrupted, dtype, STEPS)
    reference.eval()
    assert _worst(torch, params, uninterrupted, continued, reference) <= TOLERANCE


def test_torch_class_starts_in_eval_mode_and_refuses_to_step_there():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    p = torch.ones(3, requires_grad=True)
    opt = ft.ScheduleFreeAdamW([p])
    assert opt.param_groups[0]["train_mode"] is False
    p.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match=r"called in eval mode \(param_groups\[0\]\['train_mode'\] is False\)"):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(3)) and not opt.state
    opt.train()
    opt.step()
    assert opt.param_groups[0]["k"] == 1 and set(opt.state[p]) == {"z", "exp_avg_sq"}
    opt.param_groups[0]["weight_sum"] = -1.0
    with pytest.raises(ValueError, match=r"^param_groups\[0\]\['weight_sum'\] must be >= 0, got -1.0$"):
        opt.step()
    opt.param_groups[0]["weight_sum"] = 1.0
    bad = opt.state_dict()
    bad["param_groups"][0]["k"] = "3"
    with pytest.raises(ValueError, match=r"^state_dict\['param_groups'\]\[0\]\['k'\] must be an int"):
        opt.load_state_dict(bad)


def test_torch_signature_is_the_authors():
    torch = pytest.importorskip("torch")  # noqa: F841
    import inspect

    import fastopt.torch as ft

    package = _package()
    theirs = {name: p.default for name, p in inspect.signature(package).parameters.items()}
    ours = {name: p.default for name, p in inspect.signature(ft.ScheduleFreeAdamW).parameters.items()}
    assert list(ours)[: len(theirs)] == list(theirs)
    assert {k: ours[k] for k in theirs} == theirs
    assert list(ours)[len(theirs):] == ["maximize", "backend"]
    p = torch.ones(2, requires_grad=True)
    assert list(ft.ScheduleFreeAdamW([p]).defaults) == [*package([p]).defaults, "maximize"]


# --------------------------------------------------------------------------------------------
# optax.contrib, a second implementation, without warmup (optax's steps z from lr * 0 at the first
# step and weighs the average from lr / warmup_steps, in float32; the package does both from
# lr / warmup_steps)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [
    dict(lr=0.01, weight_decay=0.05, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.02, weight_lr_power=1.0),
    dict(lr=0.01, weight_decay=0.05, convention="optax"),
], ids=["wd-betas-eps", "weight-lr-power", "optax-preset"])
def test_x_and_y_agree_with_optax_contrib(options, measured):
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)  # float64 arrays (jax defaults to float32)
    import jax.numpy as jnp

    names = dict(lr="learning_rate", weight_decay="weight_decay", eps="eps", weight_lr_power="weight_lr_power",
                 warmup_steps="warmup_steps")
    theirs_options = {names[k]: v for k, v in options.items() if k not in ("betas", "convention")}
    if "betas" in options:
        theirs_options.update(b1=options["betas"][0], b2=options["betas"][1])
    rng = np.random.default_rng(5)
    initial = [rng.standard_normal(30), rng.standard_normal((4, 3))]
    grads = [[rng.standard_normal(p.shape) for p in initial] for _ in range(12)]
    ours = [p.copy() for p in initial]
    opt = fastopt.ScheduleFreeAdamW(ours, **options)
    transformation = optax.contrib.schedule_free_adamw(**theirs_options)
    params = [jnp.asarray(p) for p in initial]
    state = transformation.init(params)
    for step_grads in grads:
        opt.step(step_grads)
        updates, state = transformation.update([jnp.asarray(g) for g in step_grads], state, params)
        params = optax.apply_updates(params, updates)
    worst = max(_relative(a, np.asarray(b)) for a, b in zip(ours, params))  # y
    opt.eval()
    x = optax.contrib.schedule_free_eval_params(state, params)
    worst = max(worst, *(_relative(a, np.asarray(b)) for a, b in zip(ours, x)))
    worst = max(worst, *(_relative(opt.state[i]["z"], np.asarray(b)) for i, b in enumerate(state.z)))
    key = "ScheduleFreeAdamW (optax.contrib, float64)"
    measured["torch_worst"][key] = max(measured["torch_worst"][key], worst)
    assert worst <= TOLERANCE, f"{options}: relative difference {worst:.2e}"
