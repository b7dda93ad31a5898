# Built for the baseline instruction set, like every module of fastopt/_native that moves no
# floating-point data.
"""Cheap "nothing changed" tests, by identity and in C (no hashing, no comparison of values).

A step is fast when it can trust what it checked last time: the same groups holding the same
parameter objects and the same hyperparameter objects, the same state dict holding the same
entries. These functions answer such questions in one C loop; when they say no, the caller runs
its full checks, which name what changed.
"""

from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM

cdef extern from "Python.h":
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    int PyDict_Next(object d, Py_ssize_t* pos, PyObject** key, PyObject** value)


def dict_items(object d):
    """``d``'s keys and values (a dict, or an instance of a subclass), flattened in order:
    ``(k0, v0, k1, v1, ...)``."""
    cdef Py_ssize_t pos = 0, i = 0
    cdef PyObject* key
    cdef PyObject* value
    cdef list items
    if not isinstance(d, dict):
        raise TypeError(f"expected a dict, got {type(d).__name__}")
    items = [None] * (2 * len(d))
    while PyDict_Next(d, &pos, &key, &value):
        items[i] = <object> key
        items[i + 1] = <object> value
        i += 2
    return tuple(items)


def same_dict_items(object d, tuple items):
    """Does ``d`` (a dict, or an instance of a subclass) hold exactly the keys and values of
    ``items`` (from :func:`dict_items`), the very same objects, in the same order?"""
    cdef Py_ssize_t pos = 0, i = 0
    cdef PyObject* key
    cdef PyObject* value
    if not isinstance(d, dict) or 2 * len(d) != len(items):
        return False
    while PyDict_Next(d, &pos, &key, &value):
        if key != <PyObject*> items[i] or value != <PyObject*> items[i + 1]:
            return False
        i += 2
    return True


def same_objects(list a, tuple b):
    """Are ``a`` and ``b`` the very same objects, in the same order?"""
    cdef Py_ssize_t i, n = len(a)
    if n != len(b):
        return False
    for i in range(n):
        if <PyObject*> a[i] != <PyObject*> b[i]:
            return False
    return True


def groups_as_validated(object param_groups, list members, tuple keys, list objects):
    """Whether ``param_groups`` is exactly as last validated: a list of dicts, group ``g`` holding
    a list with the very arrays of ``members[g]`` under ``"params"`` and, under ``keys``, the very
    hyperparameter objects of ``objects[g]`` (None: a group holding a mutable value, never
    trusted). Identity only, so ``maximize=0`` after ``False`` is not "as validated".

    ``Optimizer.step`` asks this first and runs its full checks (which name what changed) only
    when the answer is no: the same test as ``_check_groups_unchanged`` and
    ``_check_all_hyperparameters`` make on their fast branch, in one C loop.
    """
    cdef Py_ssize_t g, i, n_groups = len(members), n_keys = len(keys)
    cdef PyObject* value
    cdef tuple expected_values
    cdef list current, expected
    if type(param_groups) is not list or len(<list> param_groups) != n_groups or len(objects) != n_groups:
        return False
    for g in range(n_groups):
        group = (<list> param_groups)[g]
        if type(group) is not dict or objects[g] is None:
            return False
        expected_values = <tuple> objects[g]
        if len(expected_values) != n_keys:
            return False
        for i in range(n_keys):
            value = PyDict_GetItemWithError(group, keys[i])
            if value == NULL or value != PyTuple_GET_ITEM(expected_values, i):
                return False
        params = (<dict> group).get("params")
        if type(params) is not list:
            return False
        current, expected = <list> params, <list> members[g]
        if len(current) != len(expected):
            return False
        for i in range(len(expected)):
            if PyList_GET_ITEM(current, i) != PyList_GET_ITEM(expected, i):
                return False
    return True
