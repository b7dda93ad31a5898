"""The three twins of a kernel have one name and one positional signature."""

import importlib
import inspect

import pytest

import fastopt

NAMES = sorted({cls.kernel for cls in fastopt.OPTIMIZERS.values()})  # AdamW is stepped by Adam's kernel


@pytest.mark.parametrize("name", NAMES)
def test_three_kernels_share_one_signature(name):
    kernel = f"{name}_update"
    reference = getattr(importlib.import_module(f"fastopt.{name}.reference"), kernel)
    numba_twin = getattr(importlib.import_module(f"fastopt.{name}._numba"), kernel)
    cython_twin = getattr(importlib.import_module(f"fastopt.{name}._cython"), kernel)
    expected = list(inspect.signature(reference).parameters)
    assert list(inspect.signature(numba_twin.py_func).parameters) == expected
    assert list(inspect.signature(cython_twin).parameters) == expected
    assert expected[:2] == ["param", "grad"]
    for parameter in inspect.signature(reference).parameters.values():
        assert parameter.default is inspect.Parameter.empty  # positional, no defaults
