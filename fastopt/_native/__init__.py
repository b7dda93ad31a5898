"""The compiled support every Cython twin shares; none of it computes an optimizer's numbers.

* ``generate.py`` and ``entries.pyx.tp``: each optimizer's Cython entry points (threads, length
  checks, NumPy arrays and other buffers, a whole parameter group per call), generated at build
  time from the signature of its hand-written loop;
* ``arrays.pxd``, ``checks.pxd``, ``floats.pxd``: what those entry points and the loops cimport;
* ``batch.pyx``: :class:`~fastopt._native.batch.Batch`, one parameter group's arrays checked and
  gathered in C for one kernel call (``overlap.pyx``: do any of them share memory;
  ``dlpack.pyx``: PyTorch tensors read through the DLPack C exchange API);
* ``identity.pyx``: cheap "nothing changed since the last step" tests, by identity, in C;
* ``cpu.pyx``: which instruction-set builds of the kernels this CPU runs.
"""
