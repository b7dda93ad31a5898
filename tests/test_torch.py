"""Agreement with torch.optim (for-loop implementation, ``foreach=False``) in float64.

torch contracts multiply-adds into FMA and uses MKL's sqrt, which is not correctly rounded, so
the comparison uses a tolerance: per tensor, ``max|fastopt - torch| / max|torch| <= 1e-12``.
The worst value seen per optimizer is printed at the end of the run.
"""

import numpy as np
import pytest
from specs import SPECS

torch = pytest.importorskip("torch")

STEPS = 12  # > 10, and enough to move every buffer well away from its initial value
TOLERANCE = 1e-12


def relative_difference(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    diff = np.max(np.abs(actual - expected)) if expected.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


CASES = [(name, i) for name, spec in SPECS.items() if spec.in_torch for i in range(len(spec.torch_configs))]


@pytest.mark.parametrize("backend", ["reference", "numba", "cython"])
@pytest.mark.parametrize(("name", "config_index"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_matches_torch_optim(name, config_index, backend, measured):
    spec = SPECS[name]
    config = spec.torch_configs[config_index]
    rng = np.random.default_rng(20240611 + config_index)
    shapes = [(1031,), (7, 3), ()]  # odd sizes: torch's vector body and its scalar tail both run
    initial = [np.asarray(rng.standard_normal(shape)) for shape in shapes]
    # gradients whose scale varies by e^-3..e^2 across steps, as in semantics.md's check
    grads = [
        [np.asarray(rng.standard_normal(shape) * np.exp(rng.uniform(-3, 2))) for shape in shapes]
        for _ in range(STEPS)
    ]

    ours = [p.copy() for p in initial]
    theirs = [torch.tensor(p, requires_grad=True) for p in initial]
    optimizer = spec.cls(ours, backend=backend, **config)
    torch_optimizer = getattr(torch.optim, name)(theirs, foreach=False, **spec.to_torch(config))
    for step_grads in grads:
        optimizer.step(step_grads)
        for tensor, grad in zip(theirs, step_grads):
            tensor.grad = torch.tensor(grad)
        torch_optimizer.step()

    worst = 0.0
    for index, (mine, tensor) in enumerate(zip(ours, theirs)):
        worst = max(worst, relative_difference(mine, tensor.detach().numpy()))
        torch_state = torch_optimizer.state[tensor]
        my_state = optimizer.state.get(index, {})
        assert set(my_state) == set(torch_state), f"state keys of params[{index}]"
        for key, value in torch_state.items():
            if key == "step":
                assert my_state[key] == int(value.item())
            else:
                worst = max(worst, relative_difference(my_state[key], value.numpy()))
    measured["torch_worst"][name] = max(measured["torch_worst"][name], worst)
    assert worst <= TOLERANCE, f"{name} {config}: relative difference {worst:.2e}"
