"""One buffer for a whole model: step every parameter with a single kernel call.

A model with hundreds of small tensors (biases, norms) spends its optimizer step in per-array
Python overhead, not in arithmetic. :func:`flatten` copies the parameters into one contiguous,
64-byte-aligned buffer and hands back views shaped like the originals (the idea of apex's and
DeepSpeed's flat master parameters). The model then uses the views; the optimizer sees a single
array and steps all of it in one call::

    flat = fastopt.flatten([w1, b1, w2, b2])      # copies the values in
    w1, b1, w2, b2 = flat.params                  # use these from now on
    opt = fastopt.Adam([flat.param], lr=1e-3)
    ...
    gw1, gb1, gw2, gb2 = flat.grads               # write gradients here (in place: gw1[...] = ...)
    opt.step([flat.grad])
    exp_avg_of_w1 = flat.split(opt.state[0]["exp_avg"])[0]

For an element-wise optimizer (all but Adafactor) stepping the concatenation gives exactly the
same bits as stepping each array on its own with the same hyperparameters. Adafactor's statistics
belong to a tensor (its norm, the row and column means of a matrix): to it a flat buffer is one
long vector, which is another algorithm; give it the arrays themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._memory import aligned_full
from ._validation import SUPPORTED_DTYPES


class FlatParameters:
    """Parameters (and their gradients) living in one flat buffer each; see :func:`flatten`.

    Attributes
    ----------
    param, grad : ndarray, 1-D
        The buffers; hand ``[param]`` to an optimizer and ``[grad]`` to its ``step``.
    params, grads : list of ndarray
        Views into ``param`` and ``grad``, shaped like the arrays given to :func:`flatten`.
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], dtype) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.shapes = [tuple(shape) for shape in shapes]
        sizes = [int(np.prod(shape, dtype=np.int64)) for shape in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        self.param = aligned_full((self.offsets[-1],), self.dtype)
        self.grad = aligned_full((self.offsets[-1],), self.dtype)
        self.params = self.split(self.param)
        self.grads = self.split(self.grad)

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of a flat array (the buffer, or a state array of the same size), one per parameter."""
        if flat.shape != self.param.shape:
            raise ValueError(f"expected an array of shape {self.param.shape}, got {flat.shape}")
        return [
            flat[start:end].reshape(shape)
            for start, end, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes)
        ]

    def __len__(self) -> int:
        return len(self.shapes)

    def __repr__(self) -> str:
        return f"FlatParameters({len(self)} arrays, {self.param.size} elements, {self.dtype})"


def flatten(arrays: Sequence[np.ndarray]) -> FlatParameters:
    """Copy ``arrays`` (all float32 or all float64) into one aligned buffer; see :class:`FlatParameters`."""
    arrays = list(arrays)
    if not arrays:
        raise ValueError("flatten() needs at least one array")
    for index, array in enumerate(arrays):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"arrays[{index}] must be a numpy.ndarray, got {type(array).__name__}")
        if array.dtype != arrays[0].dtype:
            raise TypeError(f"arrays[{index}] has dtype {array.dtype} but arrays[0] has dtype {arrays[0].dtype}")
    flat = FlatParameters([a.shape for a in arrays], arrays[0].dtype)
    for view, array in zip(flat.params, arrays):
        view[...] = array
    return flat
