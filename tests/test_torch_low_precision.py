"""fastopt.torch on float16 and bfloat16 parameters (fastopt._rounding): float32 state, each step
the float32 step rounded once; models train as with torch.optim (within what torch's own fused
and for-loop paths differ by); checkpoints move both ways; the 16-bit bits are the NumPy classes'.
"""

import copy

import numpy as np
import pytest
from specs import assert_bits_equal

torch = pytest.importorskip("torch")
ml_dtypes = pytest.importorskip("ml_dtypes")
import fastopt  # noqa: E402
import fastopt.torch as ft  # noqa: E402

SIXTEEN = {"bfloat16": torch.bfloat16, "float16": torch.float16}
BACKENDS = ["reference", "numba", "cython"]
# (optimizer, options) with a torch.optim twin: the per-step oracle below runs every one of them
CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.05)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5)),
    ("Adamax", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01)),
    ("Rprop", dict()),
    ("ASGD", dict(lr=0.05, t0=0)),
    ("Adafactor", dict(lr=0.05)),
]


def model(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 24), torch.nn.Tanh(), torch.nn.Linear(24, 3)).to(dtype)


def batches(steps, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(32, 12, generator=generator), torch.randn(32, 3, generator=generator)) for _ in range(steps)]


def backward(net, x, y):
    dtype = next(net.parameters()).dtype
    torch.nn.functional.mse_loss(net(x.to(dtype)).float(), y).backward()


def ordered(tensor):
    """16-bit values as integers in the order of the values (adjacent values differ by 1)."""
    bits = tensor.detach().view(torch.int16).numpy().astype(np.int32).ravel()
    return np.where(bits < 0, -(bits & 0x7FFF), bits)


@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
@pytest.mark.parametrize(("name", "options"), CASES, ids=[name for name, _ in CASES])
def test_each_step_is_torchs_float32_step_rounded_once(name, options, dtype):
    """At every step: fastopt.torch's 16-bit parameters are torch.optim's float32 step (for-loop,
    from the widened parameters, with fastopt's float32 state loaded) rounded to the dtype, within
    one unit in the last place (torch's float32 differs from fastopt's by an FMA or a sqrt ulp,
    which can cross a rounding boundary); the float32 state agrees to float32 rounding."""
    dtype = SIXTEEN[dtype]
    ours = model(dtype)
    optimizer = getattr(ft, name)(ours.parameters(), **options)
    differing = total = 0
    for step, (x, y) in enumerate(batches(6)):
        optimizer.zero_grad()
        backward(ours, x, y)
        wide = copy.deepcopy(ours).float()
        for p, q in zip(wide.parameters(), ours.parameters()):
            p.grad = q.grad.float()
        theirs = getattr(torch.optim, name)(wide.parameters(), foreach=False, **_torch_names(name, options))
        if step:
            # fastopt's float32 state, copied (torch's loader keeps a float32 tensor as it is, and
            # fastopt's step, first, would update it under torch's feet)
            theirs.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        optimizer.step()
        theirs.step()
        for p, q in zip(ours.parameters(), wide.parameters()):
            gap = np.abs(ordered(p) - ordered(q.to(dtype)))
            assert gap.max() <= 1, f"step {step}: {gap.max()} ulp"
            differing += int((gap > 0).sum())
            total += gap.size
        for entry, theirs_entry in zip(optimizer.state.values(), theirs.state.values()):
            for key, value in entry.items():
                assert value.dtype == (torch.float64 if key == "step" else torch.float32), key
                if key != "step" and value.dim():
                    torch.testing.assert_close(value, theirs_entry[key], rtol=1e-4, atol=1e-6)
    assert differing <= total // 100, f"{differing} of {total} elements one ulp apart"
    moved = max((p.detach().float() - q.detach().float()).abs().max().item() for p, q in zip(ours.parameters(), model(dtype).parameters()))
    assert moved > 1e-3


def _torch_names(name, options):
    return {("alpha" if key == "rho" else key): value for key, value in options.items()}


FUSED = ["SGD", "Adagrad", "Adam", "AdamW"]  # torch.optim has a fused path for these


@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
@pytest.mark.parametrize("name", FUSED)
def test_a_16_bit_model_trains_as_with_torch_optim(name, dtype):
    """50 steps of a 16-bit model: fastopt.torch's parameters are as far from torch.optim's for-loop
    ones as torch's own fused ones are, or nearer (fastopt keeps float32 state, as fused computes
    in float32). float16 needs an eps torch's for-loop can represent (its default underflows)."""
    dtype = SIXTEEN[dtype]
    options = dict(lr=0.01, eps=1e-4) if name in ("Adam", "AdamW", "Adagrad") and dtype == torch.float16 else dict(lr=0.01)
    nets = {kind: model(dtype) for kind in ("ours", "for-loop", "fused")}
    optimizers = {
        "ours": getattr(ft, name)(nets["ours"].parameters(), **options),
        "for-loop": getattr(torch.optim, name)(nets["for-loop"].parameters(), foreach=False, **options),
        "fused": getattr(torch.optim, name)(nets["fused"].parameters(), fused=True, **options),
    }
    for x, y in batches(50):
        for kind, net in nets.items():
            optimizers[kind].zero_grad()
            backward(net, x, y)
            optimizers[kind].step()
    flat = {kind: torch.cat([p.detach().float().ravel() for p in net.parameters()]) for kind, net in nets.items()}
    assert torch.isfinite(flat["ours"]).all()
    ours_gap = (flat["ours"] - flat["for-loop"]).abs().max().item()
    fused_gap = (flat["fused"] - flat["for-loop"]).abs().max().item()
    assert fused_gap > 0, "torch's fused and for-loop paths agree: the bound would be zero"
    assert ours_gap <= 1.5 * fused_gap, f"{ours_gap:.3g} from torch's for-loop; torch's fused is {fused_gap:.3g} from it"


@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
@pytest.mark.parametrize("name", ["Adam", "SGD", "Lion", "LAMB", "Adafactor", "ScheduleFreeAdamW", "AdaBelief", "ADOPT"])
def test_16_bit_tensors_step_to_the_numpy_classes_bits_on_every_backend(name, dtype):
    torch_dtype = SIXTEEN[dtype]
    numpy_dtype = np.dtype(np.float16) if dtype == "float16" else np.dtype(ml_dtypes.bfloat16)
    options = dict(lr=0.01)
    rng = np.random.default_rng(4)
    initial = rng.standard_normal((8, 40)).astype(np.float32)
    grads = [rng.standard_normal((8, 40)).astype(np.float32) for _ in range(4)]
    expected = initial.astype(numpy_dtype)
    numpy_optimizer = getattr(fastopt, name)([expected], backend="reference", **options)
    if hasattr(numpy_optimizer, "train"):  # Schedule-Free: train mode for training steps
        numpy_optimizer.train()
    for grad in grads:
        numpy_optimizer.step([grad.astype(numpy_dtype)])
    for backend in BACKENDS:
        param = torch.nn.Parameter(torch.from_numpy(initial).to(torch_dtype))
        optimizer = getattr(ft, name)([param], backend=backend, **options)
        if hasattr(optimizer, "train"):
            optimizer.train()
        for grad in grads:
            param.grad = torch.from_numpy(grad).to(torch_dtype)
            optimizer.step()
        assert_bits_equal(param.detach().float().numpy(), expected.astype(np.float32), f"{name} {backend}")


@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
def test_checkpoints_move_both_ways_with_torch_optim(dtype):
    dtype = SIXTEEN[dtype]
    ours, theirs = model(dtype), model(dtype)
    eps = 1e-4  # torch's float16 for-loop underflows to NaN with the default 1e-8
    optimizer = ft.AdamW(ours.parameters(), lr=0.01, eps=eps)
    reference = torch.optim.AdamW(theirs.parameters(), lr=0.01, eps=eps, foreach=False)
    for x, y in batches(3):
        for net, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            backward(net, x, y)
            opt.step()
    saved = optimizer.state_dict()
    assert all(v.dtype == torch.float32 for entry in saved["state"].values() for k, v in entry.items() if k != "step")
    resumed = ft.AdamW(copy.deepcopy(ours).parameters(), lr=0.01, eps=eps)
    resumed.load_state_dict(saved)  # float32 state stays float32 (torch's loader would cast it to 16 bits)
    for entry, original in zip(resumed.state.values(), optimizer.state.values()):
        for key in ("exp_avg", "exp_avg_sq"):
            assert entry[key].dtype == torch.float32 and torch.equal(entry[key], original[key])
    from_torch = ft.AdamW(copy.deepcopy(theirs).parameters(), lr=0.01, eps=eps)
    from_torch.load_state_dict(reference.state_dict())  # torch.optim's 16-bit state, widened exactly
    for entry, original in zip(from_torch.state.values(), reference.state.values()):
        assert entry["exp_avg"].dtype == torch.float32 and torch.equal(entry["exp_avg"], original["exp_avg"].float())
        assert torch.isfinite(entry["exp_avg_sq"]).all()
    to_torch = torch.optim.AdamW(copy.deepcopy(ours).parameters(), lr=0.01, eps=eps)
    to_torch.load_state_dict(saved)  # torch casts to the parameters' dtype, as for any checkpoint
    assert all(entry["exp_avg"].dtype == dtype for entry in to_torch.state.values())


def test_what_cannot_step_16_bit_tensors_says_so_before_changing_anything():
    weight = torch.nn.Parameter(torch.ones(4, 3, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match=r"params'\]\[0\] has dtype torch.bfloat16; SparseAdam steps float32 and float64"):
        ft.SparseAdam([weight])
    with pytest.raises(TypeError, match=r"params\[0\] has dtype torch.float16; LBFGS steps float32 and float64 tensors only"):
        ft.LBFGS([torch.nn.Parameter(torch.ones(3, dtype=torch.float16))])
    optimizer = ft.Adam([weight], lr=0.1)
    weight.grad = torch.ones(4, 3, dtype=torch.bfloat16)
    optimizer.step()
    optimizer.state[weight]["exp_avg"] = optimizer.state[weight]["exp_avg"].bfloat16()  # as torch.optim would keep it
    before = weight.detach().clone()
    with pytest.raises(ValueError, match=r"\['exp_avg'\] must be a contiguous CPU tensor of float32 \(its parameter's is 16-bit\)"):
        optimizer.step()
    assert torch.equal(weight.detach(), before)


# ---- the meta device: deferred initialisation ---------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_meta_parameters_are_accepted_until_materialised(backend):
    """As torch.optim: an optimizer built on a model on the meta device steps it once it is
    materialised (``to_empty``); a step on a parameter still on the meta device, with a
    gradient, is refused with what to do, before anything changes."""
    with torch.device("meta"):
        net = torch.nn.Linear(4, 3)
    optimizer = ft.AdamW(net.parameters(), lr=0.1, backend=backend)
    optimizer.step()  # no gradients: nothing to do, as torch
    net.weight.grad = torch.ones(3, 4, device="meta")
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] is on the meta device .*to_empty"):
        optimizer.step()
    assert optimizer.state == {} or all(not entry for entry in optimizer.state.values())
    # materialised in place (the same Parameter objects, which the optimizer holds): torch swaps
    # the tensors when asked to, as deferred-initialisation frameworks do
    swap = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        net.to_empty(device="cpu")
    finally:
        torch.__future__.set_swap_module_params_on_conversion(swap)
    assert all(p is q for p, q in zip(net.parameters(), optimizer.param_groups[0]["params"]))
    torch.nn.init.ones_(net.weight)
    torch.nn.init.zeros_(net.bias)
    for p in net.parameters():
        p.grad = torch.full_like(p, 0.5)
    optimizer.step()
    reference = torch.nn.Linear(4, 3)
    torch.nn.init.ones_(reference.weight)
    torch.nn.init.zeros_(reference.bias)
    torch_optimizer = torch.optim.AdamW(reference.parameters(), lr=0.1, foreach=False)
    for p in reference.parameters():
        p.grad = torch.full_like(p, 0.5)
    torch_optimizer.step()
    for ours, theirs in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


# ---- any dense layout: channels_last and permuted strides ---------------------------------------
LAYOUT_CASES = [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True)),
                ("RMSprop", dict(lr=0.01, centered=True)), ("Lion", dict(lr=0.001)), ("ScheduleFreeAdamW", dict(lr=0.01))]


def conv_net(memory_format, dtype=torch.float32):
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3),
                              torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net(torch.zeros(1, 3, 9, 9))  # materialise the lazy layer
    return net.to(dtype=dtype, memory_format=memory_format)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "options"), LAYOUT_CASES, ids=[name for name, _ in LAYOUT_CASES])
def test_channels_last_steps_in_memory_order_to_the_contiguous_bits(name, options, backend, dtype):
    """A channels_last model steps to the same values, bit for bit, as the same model contiguous
    (element-wise: the order of the elements does not matter), in place (no parameter copied), with
    its state in the parameters' layout, as torch.optim keeps it."""
    nets = {fmt: conv_net(fmt, dtype) for fmt in (torch.contiguous_format, torch.channels_last)}
    weight = nets[torch.channels_last][0].weight
    assert not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last)
    pointers = [p.data_ptr() for p in nets[torch.channels_last].parameters()]
    optimizers = {fmt: getattr(ft, name)(net.parameters(), backend=backend, **options) for fmt, net in nets.items()}
    for opt in optimizers.values():
        if hasattr(opt, "train"):
            opt.train()
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):  # the same gradients (a convolution's backward adds in another order per layout)
        grads = [torch.randn(p.shape, generator=generator).to(dtype) for p in nets[torch.channels_last].parameters()]
        for fmt, net in nets.items():
            for p, grad in zip(net.parameters(), grads):
                p.grad = grad.contiguous(memory_format=fmt) if grad.dim() == 4 else grad
            optimizers[fmt].step()
    for p, q in zip(nets[torch.channels_last].parameters(), nets[torch.contiguous_format].parameters()):
        assert_bits_equal(p.detach().float().contiguous().numpy(), q.detach().float().numpy(), name)
    assert [p.data_ptr() for p in nets[torch.channels_last].parameters()] == pointers
    state = optimizers[torch.channels_last].state[weight]
    for key, value in state.items():
        if value.dim():
            assert value.stride() == weight.stride(), key
    assert (weight.detach().float() != conv_net(torch.channels_last)[0].weight.float()).any()


def test_a_permuted_parameter_trains_as_torch_optim_and_its_checkpoint_keeps_the_layout():
    base = torch.randn(6, 5, 4, generator=torch.Generator().manual_seed(1))
    ours = torch.nn.Parameter(base.clone().permute(2, 0, 1).contiguous().permute(1, 2, 0))  # strides (4, 1, 30)
    theirs = torch.nn.Parameter(ours.detach().clone(memory_format=torch.preserve_format))
    assert not ours.is_contiguous() and ours.stride() == theirs.stride()
    optimizer, reference = ft.Adam([ours], lr=0.1), torch.optim.Adam([theirs], lr=0.1, foreach=False)
    for step in range(3):
        grad = torch.randn(6, 5, 4, generator=torch.Generator().manual_seed(10 + step))
        ours.grad, theirs.grad = grad.clone(), grad.clone()  # a contiguous gradient: read in ours' order
        optimizer.step()
        reference.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    resumed = ft.Adam([ours], lr=0.1)
    resumed.load_state_dict(optimizer.state_dict())
    assert resumed.state[ours]["exp_avg"].stride() == ours.stride()
    torch.testing.assert_close(resumed.state[ours]["exp_avg"], reference.state[theirs]["exp_avg"], rtol=1e-6, atol=1e-7)


def test_layouts_that_cannot_be_stepped_in_place_are_refused_naming_them():
    overlapping = torch.zeros(1).expand(4)  # stride 0: every element is one memory cell
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] is not contiguous, nor a dense tensor in permuted order"):
        ft.SGD([torch.nn.Parameter(overlapping)], lr=0.1)
    gaps = torch.zeros(4, 6)[:, ::2]  # every other column: not dense
    with pytest.raises(ValueError, match=r"is not contiguous, nor a dense tensor in permuted order"):
        ft.Adam([torch.nn.Parameter(gaps)])
    transposed = torch.nn.Parameter(torch.zeros(4, 6).t())  # dense, permuted: fine element-wise ...
    ft.Adam([transposed])
    for cls in (ft.Adafactor, ft.LAMB, ft.Muon):  # ... not for a kernel that takes the whole tensor
        with pytest.raises(ValueError, match=r"takes whole tensors in their logical order"):
            cls([transposed])


# ---- complex parameters: their real view, as torch.optim ----------------------------------------
COMPLEX_CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.1)),  # the fill in both parts, as torch
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("Adadelta", dict(lr=0.5)),
    ("Adamax", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01)),
    ("Rprop", dict(lr=0.05)),  # step sizes in both parts, as torch
    ("ASGD", dict(lr=0.05, t0=0)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "options"), COMPLEX_CASES, ids=[name for name, _ in COMPLEX_CASES])
def test_complex_parameters_step_as_torch_optim_steps_them(name, options, backend):
    """complex128 against torch.optim's for-loop (which steps ``view_as_real``) to 1e-12 relative,
    the state complex as torch's, and the state dict moving both ways."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(5, 3, dtype=torch.complex128, generator=generator)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optimizer = getattr(ft, name)([ours], backend=backend, **options)
    reference = getattr(torch.optim, name)([theirs], foreach=False, **options)
    for _ in range(6):
        grad = torch.randn(5, 3, dtype=torch.complex128, generator=generator)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        optimizer.step()
        reference.step()
    scale = theirs.detach().abs().max().item()
    assert (ours - theirs).abs().max().item() <= 1e-12 * scale
    assert (ours - start).abs().max().item() > 1e-3
    for key, value in optimizer.state[ours].items():
        if value.dim():
            assert value.dtype == torch.complex128 and value.shape == ours.shape, key
            torch.testing.assert_close(value, reference.state[theirs][key], rtol=1e-12, atol=1e-14)
    moved = getattr(ft, name)([torch.nn.Parameter(ours.detach().clone())], backend=backend, **options)
    moved.load_state_dict(reference.state_dict())  # torch's complex state into fastopt's memory
    back = getattr(torch.optim, name)([torch.nn.Parameter(ours.detach().clone())], **options)
    back.load_state_dict(optimizer.state_dict())
    for entry in (next(iter(moved.state.values())), next(iter(back.state.values()))):
        for key, value in entry.items():
            if value.dim():
                torch.testing.assert_close(value, reference.state[theirs][key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_complex64_steps_to_the_bits_of_its_real_view(backend):
    """fastopt.torch on a complex64 parameter gives the bits of the same optimizer on the
    float32 tensor of its real and imaginary parts."""
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(4, 6, dtype=torch.complex64, generator=generator)
    complex_param = torch.nn.Parameter(start.clone())
    real_param = torch.nn.Parameter(torch.view_as_real(start).clone())
    optimizers = [ft.Adam([complex_param], lr=0.01, backend=backend), ft.Adam([real_param], lr=0.01, backend=backend)]
    for _ in range(3):
        grad = torch.randn(4, 6, dtype=torch.complex64, generator=generator)
        complex_param.grad, real_param.grad = grad.clone(), torch.view_as_real(grad).clone()
        for optimizer in optimizers:
            optimizer.step()
    assert_bits_equal(torch.view_as_real(complex_param.detach()).numpy(), real_param.detach().numpy(), "complex64")


def test_complex_parameters_of_whole_tensor_optimizers_are_refused():
    param = torch.nn.Parameter(torch.zeros(4, 4, dtype=torch.complex64))
    for cls in (ft.Adafactor, ft.LAMB, ft.Muon):
        with pytest.raises(TypeError, match=r"is complex \(torch.complex64\); fastopt.torch steps complex parameters as their real view"):
            cls([param])


# ---- sparse COO gradients: SGD and Adagrad, as torch.optim takes them ---------------------------
SPARSE_CASES = [("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, nesterov=False, maximize=True)),
                ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("Adagrad", dict(lr=0.1)),
                ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, maximize=True))]


@pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")  # torch.optim.Adagrad's own, on sparse gradients
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "options"), SPARSE_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SPARSE_CASES)])
def test_sparse_embedding_gradients_step_as_torch_optim(name, options, backend):
    """nn.Embedding(sparse=True) in float64 beside torch.optim: the same values to 1e-12 (to the
    bit here); without momentum, the rows no gradient named keep their bits."""
    torch.manual_seed(0)
    ours, theirs = torch.nn.Embedding(30, 4, sparse=True).double(), torch.nn.Embedding(30, 4, sparse=True).double()
    theirs.load_state_dict(ours.state_dict())
    start = ours.weight.detach().clone()
    optimizer = getattr(ft, name)(ours.parameters(), backend=backend, **options)
    reference = getattr(torch.optim, name)(theirs.parameters(), **options)
    named = set()
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        indices = torch.randint(0, 20, (9,), generator=generator)  # rows 20-29 never named; repeats summed
        named |= set(indices.tolist())
        for embedding, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            embedding(indices).pow(2).sum().backward()
            assert embedding.weight.grad.is_sparse
            opt.step()
    assert (ours.weight - theirs.weight).abs().max().item() <= 1e-12 * theirs.weight.abs().max().item()
    untouched = sorted(set(range(30)) - named)
    assert torch.equal(ours.weight[untouched], start[untouched])
    assert (ours.weight[sorted(named)] - start[sorted(named)]).abs().min().item() > 0


def test_sparse_gradients_are_refused_where_torch_refuses_them_and_nothing_changes():
    embedding = torch.nn.Embedding(10, 3, sparse=True).double()
    before = embedding.weight.detach().clone()
    embedding(torch.tensor([1, 4])).sum().backward()
    for cls, options in ((ft.SGD, dict(lr=0.1, weight_decay=0.01)), (ft.Adagrad, dict(lr=0.1, weight_decay=0.01))):
        with pytest.raises(RuntimeError, match="weight_decay option is not compatible with sparse gradients"):
            cls(embedding.parameters(), **options).step()
    with pytest.raises(RuntimeError, match="RMSprop does not support sparse gradients"):
        ft.RMSprop(embedding.parameters()).step()
    assert torch.equal(embedding.weight.detach(), before)


# ---- step(copy_to=...): float32 master weights of a 16-bit model ----------------------------------
@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["AdamW", "SGD", "Adafactor", "ScheduleFreeAdamW"])
def test_master_weights_write_the_16_bit_model_in_the_same_step(name, backend, dtype):
    """The DeepSpeed pattern: a 16-bit model computes the gradients, float32 master weights are
    stepped, and the step writes the model's parameters; the masters and state are those of a
    step without copies, the model's parameters their rounding."""
    dtype = SIXTEEN[dtype]
    net = model(dtype)
    masters = [torch.nn.Parameter(p.detach().float()) for p in net.parameters()]
    plain = [torch.nn.Parameter(p.detach().clone()) for p in masters]
    with_copy = getattr(ft, name)(masters, backend=backend, lr=0.01)
    without = getattr(ft, name)(plain, backend=backend, lr=0.01)
    for optimizer in (with_copy, without):
        if hasattr(optimizer, "train"):
            optimizer.train()
    for x, y in batches(4):
        net.zero_grad()
        backward(net, x, y)
        for master, twin, p in zip(masters, plain, net.parameters()):
            master.grad, twin.grad = p.grad.float(), p.grad.float()
        with_copy.step(copy_to=[p.data for p in net.parameters()])
        without.step()
    for master, twin, p in zip(masters, plain, net.parameters()):
        assert torch.equal(master, twin)
        assert torch.equal(p.detach(), master.detach().to(dtype))
    for entry, twin_entry in zip(with_copy.state.values(), without.state.values()):
        for key, value in entry.items():
            assert torch.equal(value, twin_entry[key]), key


def test_a_bad_copy_is_refused_before_the_step_changes_anything():
    master = torch.nn.Parameter(torch.ones(4, 3))
    optimizer = ft.Adam([master], lr=0.1)
    master.grad = torch.ones(4, 3)
    cases = [
        ([torch.zeros(4, 3)], TypeError, r"copy_to\[0\] must be a float16 or bfloat16 CPU tensor"),
        ([torch.zeros(3, 4, dtype=torch.bfloat16)], ValueError, r"copy_to\[0\] must have its parameter's shape \(4, 3\) and layout"),
        ([torch.zeros(3, 4, dtype=torch.bfloat16).t()], ValueError, r"and layout"),
        ([], ValueError, r"copy_to has 0 entries for 1 parameters"),
        ([master.grad.view(-1).view(torch.bfloat16)[:12].view(4, 3)], ValueError, r"params\[0\].grad shares memory with copy_to\[0\]|copy_to\[0\] shares memory with params\[0\].grad"),
    ]
    for copy_to, error, message in cases:
        with pytest.raises(error, match=message):
            optimizer.step(copy_to=copy_to)
    assert torch.equal(master.detach(), torch.ones(4, 3))
    assert not optimizer.state.get(master)


def test_bfloat16_without_ml_dtypes_says_what_to_install(monkeypatch):
    """Where ml_dtypes is missing (fastopt views bfloat16 tensors through it), a bfloat16
    parameter is refused at construction with the install command."""
    from fastopt.torch import _tensors

    monkeypatch.setattr(_tensors, "PARAM_DTYPES", {k: v for k, v in _tensors.PARAM_DTYPES.items() if k != torch.bfloat16})
    with pytest.raises(TypeError, match=r"torch.bfloat16, which fastopt.torch steps through ml_dtypes' NumPy bfloat16: `pip install ml_dtypes`"):
        ft.AdamW([torch.nn.Parameter(torch.zeros(3, dtype=torch.bfloat16))])
    ft.AdamW([torch.nn.Parameter(torch.zeros(3, dtype=torch.float16))])  # float16 needs nothing
