"""fastopt.torch against torch.optim: training runs, state dicts both ways, and rejected input.

Agreement is measured as in tests/test_torch.py: per tensor, ``max|fastopt - torch| / max|torch|``
in float64 must stay below 1e-12 (torch contracts multiply-adds into FMA and its sqrt is not
correctly rounded, so a few ulp of difference are expected, not bit identity). The worst value
per optimizer is added to the end-of-run summary.
"""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import fastopt  # noqa: E402
import fastopt.torch as ft  # noqa: E402

STEPS = 30
TOLERANCE = 1e-12

# (optimizer, options): every option of each optimizer is switched on in at least one case.
CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-6)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.001, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.0001, alpha=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True, eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.5, amsgrad=True)),
]


def make_model(dtype=torch.float64) -> torch.nn.Module:
    """A small MLP with a LayerNorm: 2-d weights, biases, norm scales (11 tensors)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 24), torch.nn.LayerNorm(24), torch.nn.Tanh(),
        torch.nn.Linear(24, 24), torch.nn.Tanh(), torch.nn.Linear(24, 12), torch.nn.Tanh(), torch.nn.Linear(12, 1),
    ).to(dtype)


def data(dtype=torch.float64):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS, 16, 6, generator=generator, dtype=dtype)
    y = torch.randn(STEPS, 16, 1, generator=generator, dtype=dtype)
    return x, y


def train(model, optimizer, steps, start=0, scheduler=None):
    x, y = data(next(model.parameters()).dtype)
    for i in range(start, start + steps):
        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[i]), y[i])
            loss.backward()
            return loss
        loss = optimizer.step(closure)
        assert loss is not None
        if scheduler is not None:
            scheduler.step()


def relative_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max|actual - expected| / max|expected|; infinite if either holds a NaN or an inf (a diverged
    run would otherwise compare as equal, because every comparison with NaN is false)."""
    if not (torch.isfinite(actual).all() and torch.isfinite(expected).all()):
        return float("inf")
    scale = expected.abs().max().item() if expected.numel() else 0.0
    diff = (actual - expected).abs().max().item() if expected.numel() else 0.0
    return diff / scale if scale > 0 else diff


def worst_difference(model_a, model_b, optimizer_a=None, optimizer_b=None) -> float:
    worst = 0.0
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        worst = max(worst, relative_difference(pa.detach(), pb.detach()))
        if optimizer_a is not None:
            state_a, state_b = optimizer_a.state[pa], optimizer_b.state[pb]
            assert set(state_a) == set(state_b)
            for key, value in state_b.items():
                if key == "step":
                    assert float(state_a[key]) == float(value)
                else:
                    worst = max(worst, relative_difference(state_a[key], value))
    return worst


def groups(model, options, split):
    """All parameters in one group, or in two with different hyperparameters."""
    params = list(model.parameters())
    if not split:
        return params
    second = {"params": params[4:], "lr": options.get("lr", 0.01) * 0.5}
    if "weight_decay" in options:
        second["weight_decay"] = options["weight_decay"] * 2
    return [{"params": params[:4]}, second]


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "one-call-each"])
@pytest.mark.parametrize("split", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_training_matches_torch_optim(name, options, split, pack, measured):
    ours, theirs = make_model(), make_model()
    optimizer = getattr(ft, name)(groups(ours, options, split), pack_small_tensors=pack, **options)
    reference = getattr(torch.optim, name)(groups(theirs, options, split), foreach=False, **options)
    # the schedule changes lr every step (and so the scalars of every later step)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95) if split else None
    reference_scheduler = torch.optim.lr_scheduler.ExponentialLR(reference, gamma=0.95) if split else None
    x, y = data()
    for i in range(STEPS):
        for model, opt, sched in ((ours, optimizer, scheduler), (theirs, reference, reference_scheduler)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x[i]), y[i]).backward()
            opt.step()
            if sched is not None:
                sched.step()
    worst = worst_difference(ours, theirs, optimizer, reference)
    measured["torch_worst"][f"torch.{name}"] = max(measured["torch_worst"][f"torch.{name}"], worst)
    assert worst <= TOLERANCE, f"{name} {options}: relative difference {worst:.2e}"
    moved = max(relative_difference(p.detach(), q.detach()) for p, q in zip(ours.parameters(), make_model().parameters()))
    assert moved > 1e-3, "the parameters barely moved: the comparison would prove nothing"


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_float32_is_bit_identical_to_fastopt_on_numpy(name):
    """The adapter adds no arithmetic: float32 tensors step to the same bits as NumPy arrays
    stepped by the fastopt class itself (RMSprop's alpha is fastopt's rho)."""
    options = {"SGD": dict(lr=0.1, momentum=0.9), "Adagrad": {}, "RMSprop": dict(alpha=0.9, centered=True),
               "Adam": dict(amsgrad=True), "AdamW": {}}[name]
    rng = np.random.default_rng(3)
    shapes = [(5, 7), (7,), (), (40_000,)]  # small ones are packed, the last is stepped alone
    initial = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    tensors = [torch.tensor(a) for a in initial]
    arrays = [a.copy() for a in initial]
    numpy_options = {("rho" if k == "alpha" else k): v for k, v in options.items()}
    if name == "RMSprop":
        numpy_options.setdefault("lr", 1e-2)  # torch's default, not fastopt's
    optimizer, numpy_optimizer = getattr(ft, name)(tensors, **options), getattr(fastopt, name)(arrays, **numpy_options)
    for _ in range(5):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        optimizer.step()
        numpy_optimizer.step(grads)
    for t, a in zip(tensors, arrays):
        np.testing.assert_array_equal(t.numpy(), a)


# ------------------------------------------------------------------------------------------------
# State dicts, both directions
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["torch-to-fastopt", "fastopt-to-torch"])
@pytest.mark.parametrize(("name", "options"), [CASES[1], CASES[4], CASES[6], CASES[9], CASES[12]],
                         ids=["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_state_dict_moves_between_torch_and_fastopt(name, options, direction, measured):
    """Train 15 steps with one library, move model and optimizer state to the other, train 15 more;
    compare with 30 uninterrupted torch.optim steps."""
    first, second = (torch.optim, ft) if direction == "torch-to-fastopt" else (ft, torch.optim)
    kwargs = lambda module: dict(foreach=False) if module is torch.optim else {}  # noqa: E731

    uninterrupted = make_model()
    reference = getattr(torch.optim, name)(uninterrupted.parameters(), foreach=False, **options)
    train(uninterrupted, reference, STEPS)

    model = make_model()
    optimizer = getattr(first, name)(model.parameters(), **kwargs(first), **options)
    train(model, optimizer, STEPS // 2)
    saved_model = copy.deepcopy(model.state_dict())
    saved = copy.deepcopy(optimizer.state_dict())

    resumed = make_model()
    resumed.load_state_dict(saved_model)
    continued = getattr(second, name)(resumed.parameters(), **kwargs(second), **options)
    continued.load_state_dict(saved)
    train(resumed, continued, STEPS - STEPS // 2, start=STEPS // 2)

    worst = worst_difference(resumed, uninterrupted, continued, reference)
    assert worst <= TOLERANCE, f"{direction} {name}: relative difference {worst:.2e}"
    if second is ft and name != "SGD":
        assert all(s["step"].dtype == torch.float64 for s in continued.state.values())


def test_step_is_float64_and_counts_past_float32s_limit():
    """torch's float32 step stops at 2**24; fastopt's float64 step keeps counting, and
    torch.optim.Adam (for-loop) loads it and carries on from it."""
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = ft.Adam([p])
    p.grad = torch.ones(3, dtype=torch.float64)
    optimizer.step()
    optimizer.state[p]["step"].fill_(2.0**24)
    optimizer.step()
    assert optimizer.state[p]["step"].item() == 2.0**24 + 1
    reference = torch.optim.Adam([p], foreach=False)
    reference.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    reference.step()
    assert reference.state[p]["step"].item() == 2.0**24 + 2


def test_pickle_round_trip_of_state_dict(tmp_path):
    model = make_model()
    optimizer = ft.Adam(model.parameters(), lr=0.01)
    train(model, optimizer, 3)
    torch.save(optimizer.state_dict(), tmp_path / "opt.pt")
    restored = ft.Adam(model.parameters(), lr=0.01)
    restored.load_state_dict(torch.load(tmp_path / "opt.pt"))
    for p in model.parameters():
        for key, value in optimizer.state[p].items():
            assert torch.equal(restored.state[p][key], value)


# ------------------------------------------------------------------------------------------------
# Behaviour torch users rely on
# ------------------------------------------------------------------------------------------------
def test_parameters_without_gradient_are_skipped():
    model = make_model()
    frozen = model[0].weight
    before = frozen.detach().clone()
    optimizer = ft.Adam(model.parameters(), lr=0.1)
    x, y = data()
    for i in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x[i]), y[i]).backward()
        frozen.grad = None
        optimizer.step()
    assert torch.equal(frozen.detach(), before)
    assert frozen not in optimizer.state or not optimizer.state[frozen]
    assert all(float(optimizer.state[p]["step"]) == 3 for p in model.parameters() if p is not frozen)


def test_replaced_parameter_storage_is_noticed():
    """``p.data = ...`` (e.g. a reload) must be stepped where the parameter now lives."""
    ours, theirs = make_model(), make_model()
    optimizer = ft.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    reference = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, foreach=False)
    train(ours, optimizer, 2)
    train(theirs, reference, 2)
    for p in ours.parameters():
        p.data = p.data.clone()  # new memory, same values
    train(ours, optimizer, 3, start=2)
    train(theirs, reference, 3, start=2)
    assert worst_difference(ours, theirs) <= TOLERANCE


def test_packed_parameters_keep_values_and_identity():
    model = make_model()
    params = list(model.parameters())
    values = [p.detach().clone() for p in params]
    optimizer = ft.Adam(model.parameters(), lr=0.0)  # lr 0: one step changes nothing
    train(model, optimizer, 1)
    assert all(p is q for p, q in zip(model.parameters(), params))
    assert all(torch.equal(p.detach(), v) for p, v in zip(params, values))
    assert all(p.is_contiguous() for p in params)


def test_hyperparameter_errors_use_torchs_messages():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        ft.Adam(p, lr=-1.0)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        ft.AdamW(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid alpha value: -0.5"):
        ft.RMSprop(p, alpha=-0.5)
    ft.RMSprop(p, alpha=1.5)  # torch has no upper bound (fastopt.RMSprop wants rho < 1)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        ft.SGD(p, nesterov=True)
    with pytest.raises(ValueError, match="Invalid initial_accumulator_value value: -1"):
        ft.Adagrad(p, initial_accumulator_value=-1.0)
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        ft.Adam(p, capturable=True)


def test_a_rejected_step_changes_nothing():
    """A bad lr set by hand in the second group is found before the first group is updated."""
    a, b = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    optimizer = ft.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    optimizer.param_groups[1]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        optimizer.step()
    assert torch.equal(a.detach(), torch.ones(3)) and not optimizer.state[a]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: torch.zeros(3, device="meta", requires_grad=True), ValueError, "CPU tensors only"),
        (lambda: torch.zeros(3, dtype=torch.float16, requires_grad=True), TypeError, "float16"),
        (lambda: torch.zeros(3, dtype=torch.bfloat16, requires_grad=True), TypeError, "bfloat16"),
        (lambda: torch.zeros(3, dtype=torch.complex64, requires_grad=True), TypeError, "complex"),
        (lambda: torch.zeros(4, 3).t().requires_grad_(), ValueError, "not contiguous"),
    ],
    ids=["non-cpu", "float16", "bfloat16", "complex", "non-contiguous"],
)
def test_unsupported_parameters_are_rejected(make, error, message):
    with pytest.raises(error, match=message):
        ft.Adam([make()])


def test_sparse_gradients_are_rejected_before_any_update():
    embedding = torch.nn.Embedding(10, 4, sparse=True).double()
    dense = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    optimizer = ft.SGD([dense, embedding.weight], lr=0.1)
    before = embedding.weight.detach().clone()
    (embedding(torch.tensor([1, 2])).sum() + dense.sum()).backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        optimizer.step()
    assert torch.equal(dense.detach(), torch.ones(4, dtype=torch.float64))
    assert torch.equal(embedding.weight.detach(), before)


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "one-call-each"])
def test_non_contiguous_gradient_is_read_through_a_copy(pack):
    """A transposed gradient gives the same bits as its contiguous copy (element order kept)."""
    p = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
    q = p.detach().clone().requires_grad_()
    grad = torch.arange(12, dtype=torch.float64).reshape(4, 3).t()
    p.grad, q.grad = grad, grad.contiguous()
    companions = [torch.zeros(2, dtype=torch.float64, requires_grad=True) for _ in range(2)]  # so p is packed
    for c in companions:
        c.grad = torch.ones(2, dtype=torch.float64)
    ft.SGD([p, *companions], lr=0.1, pack_small_tensors=pack).step()
    ft.SGD([q], lr=0.1).step()
    assert torch.equal(p.detach(), q.detach())
    assert not torch.equal(p.detach(), torch.ones(3, 4, dtype=torch.float64))


def test_importing_fastopt_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, fastopt; fastopt.Adam; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_gradients_kept_between_steps_are_accumulated_in_place():
    """With zero_grad(set_to_none=False) the small parameters' .grad become views of the packed
    gradient buffer (no copy per step); training must still match torch.optim."""
    ours, theirs = make_model(), make_model()
    optimizer = ft.Adam(ours.parameters(), lr=0.01)
    reference = torch.optim.Adam(theirs.parameters(), lr=0.01, foreach=False)
    x, y = data()
    for i in range(STEPS):
        for model, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad(set_to_none=False)
            torch.nn.functional.mse_loss(model(x[i]), y[i]).backward()
            opt.step()
    pack = next(iter(optimizer._packs.values()))
    assert all(p.grad.data_ptr() == v.data_ptr() for p, v in zip(pack.params, pack.grad_views))
    assert worst_difference(ours, theirs, optimizer, reference) <= TOLERANCE
