"""SparseAdam: gradients that name rows, and the rows they do not name.

Its gradients are not those of tests/specs.py (dense arrays), so it has its own tests here: the
three backends bit for bit (Hypothesis, repeated and missing rows, finite and extreme values),
rows no gradient names left exactly as they were, torch.optim.SparseAdam (NumPy class and
fastopt.torch with ``nn.Embedding(sparse=True)``), state dicts both ways, and every bad gradient
refused with nothing changed.
"""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp
from specs import DTYPES, FAST_BACKENDS, assert_bits_equal, assert_same_state, decay_st, lr_st
from strategies import any_elements, finite_elements

import fastopt

sparse_adam_options = st.fixed_dictionaries(
    dict(
        lr=lr_st.filter(lambda lr: lr > 0),
        betas=st.tuples(decay_st, decay_st),
        eps=st.one_of(st.sampled_from([1e-8, 1e-3]), st.floats(1e-12, 1e-2)),
        maximize=st.booleans(),
    )
)


def run_agreement(backend, data, elements):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    options = data.draw(sparse_adam_options, label="options")
    shapes = data.draw(st.lists(hynp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6), min_size=1, max_size=3))
    initial = [data.draw(hynp.arrays(dtype, shape, elements=elements(dtype))) for shape in shapes]
    reference_params = [p.copy() for p in initial]
    backend_params = [p.copy() for p in initial]
    reference = fastopt.SparseAdam(reference_params, backend="reference", **options)
    fast = fastopt.SparseAdam(backend_params, backend=backend, **options)
    named = [np.zeros(p.shape[0], bool) for p in initial]
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        grads = []
        for index, p in enumerate(initial):
            if p.shape[0] == 0 or data.draw(st.integers(0, 9), label="skip") == 0:
                grads.append(None)
                continue
            rows = np.array(data.draw(st.lists(st.integers(0, p.shape[0] - 1), max_size=8)), dtype=np.int64)
            named[index][rows] = True
            values = data.draw(hynp.arrays(dtype, (len(rows), *p.shape[1:]), elements=elements(dtype)))
            grads.append((rows, values))
        for opt in (reference, fast):
            opt.step(grads)
    for index, (actual, expected) in enumerate(zip(backend_params, reference_params)):
        assert_bits_equal(actual, expected, f"params[{index}]")
        # rows no gradient named: exactly their initial values, weights and moments
        assert_bits_equal(actual[~named[index]], initial[index][~named[index]], f"params[{index}] unnamed rows")
        if index in fast.state:
            assert not np.any(fast.state[index]["exp_avg_sq"][~named[index]])
    assert_same_state(fast, reference, backend)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@given(data=st.data())
def test_backend_matches_reference_bit_for_bit(backend, data, measured):
    run_agreement(backend, data, finite_elements)
    measured["examples"][f"SparseAdam-{backend} (finite)"] += 1


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@given(data=st.data())
def test_backend_matches_reference_on_extreme_values(backend, data, measured):
    run_agreement(backend, data, any_elements)
    measured["examples"][f"SparseAdam-{backend} (extreme)"] += 1


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_first_step_of_a_row_is_lr_times_its_sign_and_a_repeated_row_is_summed(backend, dtype):
    table = np.zeros((4, 3), dtype)
    opt = fastopt.SparseAdam([table], lr=0.25, eps=1e-30, backend=backend)
    rows = np.array([3, 1, 3])
    values = np.array([[1, -2, 0], [4, 0.5, -1], [1, 0, 0]], dtype)
    opt.step([(rows, values)])
    # m = (1 - beta1) g, v = (1 - beta2) g^2: the step is lr * sign(g) (to eps), 0 where g = 0
    expected = np.zeros((4, 3), dtype)
    expected[1] = [-0.25, -0.25, 0.25]
    expected[3] = [-0.25, 0.25, 0.0]  # row 3: (1 + 1, -2 + 0, 0 + 0)
    np.testing.assert_allclose(table, expected, rtol=1e-6)
    assert_bits_equal(table[[0, 2]], np.zeros((2, 3), dtype))
    np.testing.assert_allclose(opt.state[0]["exp_avg"][3], dtype(0.1) * np.array([2, -2, 0], dtype), rtol=1e-6)
    assert opt.state[0]["step"] == 1


# --------------------------------------------------------------------------------------------
# torch.optim.SparseAdam
# --------------------------------------------------------------------------------------------
TORCH_CASES = [dict(), dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, maximize=True)]


def embedding_pair(torch, dtype, seed=0):
    torch.manual_seed(seed)
    ours, theirs = (torch.nn.Embedding(40, 6, sparse=True).to(dtype) for _ in range(2))
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("backend", ["reference", "numba", "cython"])
@pytest.mark.parametrize("options", TORCH_CASES, ids=["defaults", "options"])
def test_fastopt_torch_and_numpy_class_match_torch_optim(options, backend, measured):
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    ours, theirs = embedding_pair(torch, torch.float64)
    optimizer = ft.SparseAdam(ours.parameters(), backend=backend, **options)
    reference = torch.optim.SparseAdam(theirs.parameters(), **options)
    table = ours.weight.detach().numpy().copy()
    numpy_optimizer = fastopt.SparseAdam([table], backend=backend, **options)
    start = theirs.weight.detach().numpy().copy()
    generator = torch.Generator().manual_seed(1)
    named = set()
    for _ in range(25):
        words = torch.randint(0, 36, (12,), generator=generator)  # repeated words: coalesced; 36-39 never
        named.update(words.tolist())
        for model, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            (model(words) ** 2).sum().backward()
            opt.step()
        grad = ours.weight.grad.coalesce()  # fastopt.torch's gradient: the NumPy class must give its bits
        numpy_optimizer.step([(grad.indices()[0].numpy(), grad.values().numpy())])
    expected = theirs.weight.detach().numpy()
    worst = max(
        relative(ours.weight.detach().numpy(), expected),
        relative(optimizer.state[ours.weight]["exp_avg_sq"].numpy(), reference.state[theirs.weight]["exp_avg_sq"].numpy()),
        relative(table, expected),
    )
    measured["torch_worst"]["SparseAdam"] = max(measured["torch_worst"]["SparseAdam"], worst)
    assert worst <= 1e-12
    assert_bits_equal(table, ours.weight.detach().numpy(), "the NumPy class and fastopt.torch")
    unnamed = sorted(set(range(40)) - named)
    assert_bits_equal(ours.weight.detach().numpy()[unnamed], start[unnamed], "rows no batch named")
    assert relative(expected, start) > 1e-3, "the table barely moved: the comparison would prove nothing"


def test_state_dicts_load_both_ways():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    ours, theirs = embedding_pair(torch, torch.float32)
    optimizer, reference = ft.SparseAdam(ours.parameters()), torch.optim.SparseAdam(theirs.parameters())
    words = torch.tensor([1, 5, 5, 7])
    for model, opt in ((ours, optimizer), (theirs, reference)):
        for _ in range(3):
            opt.zero_grad()
            model(words).sum().backward()
            opt.step()
    continued = torch.optim.SparseAdam(ours.parameters())
    continued.load_state_dict(optimizer.state_dict())  # fastopt -> torch: torch steps on from it
    assert continued.state[ours.weight]["step"] == 3
    loaded = ft.SparseAdam(theirs.parameters())
    loaded.load_state_dict(reference.state_dict())  # torch (an int step) -> fastopt
    assert float(loaded.state[theirs.weight]["step"]) == 3.0
    for model, opt in ((ours, continued), (theirs, loaded)):
        opt.zero_grad()
        model(words).sum().backward()
        opt.step()
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-6)


def test_fastopt_torch_refuses_dense_gradients_as_torch_does():
    torch = pytest.importorskip("torch")
    import inspect

    import fastopt.torch as ft

    p = torch.zeros(3, 2, requires_grad=True)
    optimizer = ft.SparseAdam([p])
    p.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients, please consider Adam instead"):
        optimizer.step()
    assert not p.detach().any() and not optimizer.state.get(p)
    ours, theirs = inspect.signature(ft.SparseAdam).parameters, inspect.signature(torch.optim.SparseAdam).parameters
    assert all(ours[key].default == parameter.default for key, parameter in theirs.items())
    assert ft.SparseAdam([p]).defaults == torch.optim.SparseAdam([p]).defaults


# --------------------------------------------------------------------------------------------
# Bad input: a clear error naming the argument, and nothing changed
# --------------------------------------------------------------------------------------------
P = np.zeros((5, 2))
BAD_GRADIENTS = [
    (np.ones((5, 2)), TypeError, "grads[1] is a dense array: SparseAdam takes sparse gradients"),
    ((np.array([0]),), TypeError, "grads[1] must be None or a pair (indices, values), got tuple"),
    ([1, 2], TypeError, "grads[1][0] (indices) must be a 1-D numpy array of integers, got int"),
    ((np.array([0.0]), np.ones((1, 2))), TypeError, "(indices) must be a 1-D numpy array of integers, got 1-D float64"),
    ((np.array([[0]]), np.ones((1, 2))), TypeError, "(indices) must be a 1-D numpy array of integers, got 2-D int64"),
    ((np.array([0]), [[1.0, 2.0]]), TypeError, "grads[1][1] (values) must be a numpy.ndarray, got list"),
    ((np.array([0]), np.ones((1, 2), np.float32)), TypeError, "(values) has dtype float32 but params[1] has dtype float64"),
    ((np.array([0, 1]), np.ones((1, 2))), ValueError, "(values) has shape (1, 2); 2 indices of params[1] (shape (5, 2)) need shape (2, 2)"),
    ((np.array([0, 5]), np.ones((2, 2))), ValueError, "grads[1][0] (indices) holds 5, outside params[1]'s 5 rows"),
    ((np.array([-1]), np.ones((1, 2))), ValueError, "grads[1][0] (indices) holds -1, outside params[1]'s 5 rows"),
]


@pytest.mark.hostile
@pytest.mark.parametrize(("grad", "error", "message"), BAD_GRADIENTS)
def test_a_bad_sparse_gradient_is_refused_and_changes_nothing(grad, error, message):
    first, second = np.ones(3), P.copy()
    opt = fastopt.SparseAdam([first, second])
    opt.step([(np.array([0]), np.ones(1)), (np.array([1]), np.ones((1, 2)))])
    before = [first.copy(), second.copy()]
    before_state = {k: {n: np.copy(a) for n, a in v.items()} for k, v in opt.state.items()}
    with pytest.raises(error, match=re.escape(message)):
        opt.step([(np.array([0, 1]), np.ones(2)), grad])
    assert_bits_equal(first, before[0])
    assert_bits_equal(second, before[1])
    for index, entry in before_state.items():
        for name, value in entry.items():
            assert np.array_equal(opt.state[index][name], value), (index, name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(lr=0.0), "Invalid learning rate: 0.0"),  # torch: lr > 0, strictly
        (dict(eps=0.0), "Invalid epsilon value: 0.0"),
        (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (dict(lr=float("nan")), "Invalid learning rate: nan"),
    ],
)
def test_invalid_hyperparameters_use_torchs_messages(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        fastopt.SparseAdam([P.copy()], **kwargs)


def test_a_0d_parameter_has_no_rows():
    opt = fastopt.SparseAdam([np.zeros(())])
    with pytest.raises(ValueError, match=r"params\[0\] is 0-d: a sparse gradient names rows along a first axis"):
        opt.step([(np.array([0]), np.ones(1))])


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_rows_agree_bit_for_bit(backend, dtype):
    """Rows of 1,001 elements (a vectorised body and an odd tail) and gathers of 37 of 50 rows,
    with repeats: the Hypothesis tests above draw small arrays."""
    rng = np.random.default_rng(5)
    initial = rng.standard_normal((50, 1001)).astype(dtype)
    tables = [initial.copy(), initial.copy()]
    reference = fastopt.SparseAdam([tables[0]], lr=0.01, backend="reference")
    fast = fastopt.SparseAdam([tables[1]], lr=0.01, backend=backend)
    for _ in range(6):
        rows = rng.integers(0, 50, 37)
        values = rng.standard_normal((37, 1001)).astype(dtype)
        reference.step([(rows, values)])
        fast.step([(rows, values)])
    assert_bits_equal(tables[1], tables[0])
    assert_same_state(fast, reference, backend)
