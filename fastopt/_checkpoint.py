"""Checkpoints of the NumPy front end: ``state_dict`` and ``load_state_dict``, in torch's layout.

``{"state": {index: {key: value}}, "param_groups": [{..., "params": [index, ...]}]}``: the same
layout torch.optim uses, with NumPy arrays for tensors and a Python ``int`` step. A loaded state
dict is checked in full before anything is replaced (the same class, the same groups, arrays of
the parameters' shapes and dtypes, valid hyperparameters and counters), so a rejected load leaves
the optimizer as it was.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._memory import aligned_copy
from ._rounding import state_dtype
from ._threads import one_at_a_time


class Checkpoints:
    """``state_dict`` and ``load_state_dict`` of :class:`fastopt.Optimizer`."""

    @one_at_a_time
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {key: value}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Arrays are copies: the result does not change when training continues. It can be saved
        with ``pickle`` (or ``np.savez`` after flattening) and loaded with ``load_state_dict``.
        """
        groups = []
        index = 0
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(packed)
        state = {
            i: {key: (value.copy() if isinstance(value, np.ndarray) else value) for key, value in s.items()}
            for i, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    @one_at_a_time
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` (arrays are copied in).

        The saved dict must come from the same optimizer class over parameters of the same
        shapes and dtypes, in the same groups; anything else raises and changes nothing.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict must be a dict with exactly the keys 'state' and 'param_groups'")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, list) or not isinstance(saved_state, dict):
            raise TypeError("state_dict['param_groups'] must be a list and state_dict['state'] a dict")
        self._check_groups_unchanged()
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")

        new_groups, id_to_index = [], {}
        index = 0
        for group_index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            where = f"state_dict['param_groups'][{group_index}]"
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), list):
                raise TypeError(f"{where} must be a dict with a 'params' list")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group ({where} has {len(saved['params'])} parameters, "
                    f"the optimizer's group has {len(group['params'])})"
                )
            keys = set(saved) - {"params"}
            # a flag missing from an older checkpoint takes its torch value (what that run computed)
            missing, unknown = set(self.defaults) - keys - set(self.flag_defaults), keys - set(self.defaults)
            if missing or unknown:
                raise ValueError(
                    f"{where} does not hold {type(self).__name__}'s hyperparameters "
                    f"(missing {sorted(missing)}, unknown {sorted(unknown)}); "
                    "was it saved from another optimizer?"
                )
            new_group = {
                "params": group["params"],
                **{key: saved[key] if key in saved else self.flag_defaults[key] for key in self.defaults},
            }
            if isinstance(new_group.get("betas"), list):
                new_group["betas"] = tuple(new_group["betas"])
            self.check_hyperparameters(new_group)
            for saved_id in saved["params"]:
                if not isinstance(saved_id, numbers.Integral) or saved_id in id_to_index:
                    raise ValueError(f"{where}['params'] must hold distinct integer indices")
                id_to_index[saved_id] = index
                index += 1
            new_groups.append(new_group)

        new_state: dict[int, dict[str, Any]] = {}
        for saved_id, entry in saved_state.items():
            if saved_id not in id_to_index:
                raise ValueError(f"state_dict['state'] has an entry for unknown parameter id {saved_id!r}")
            i = id_to_index[saved_id]
            new_state[i] = self._load_param_state(f"state_dict['state'][{saved_id!r}]", entry, self._params[i])

        for group, new_group in zip(self.param_groups, new_groups):
            group.update(new_group)
        self.state = new_state
        self._flat_state_cache.clear()
        self._checked_states.clear()

    def _load_param_state(self, where: str, entry: object, param: np.ndarray) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise TypeError(f"{where} must be a dict")
        missing = set(self.required_state_keys) - set(entry)
        unknown = set(entry) - set(self.state_keys)
        if missing or unknown:
            raise ValueError(
                f"{where} does not hold {type(self).__name__} state (missing {sorted(missing)}, "
                f"unknown {sorted(unknown)}); was it saved from another optimizer?"
            )
        loaded: dict[str, Any] = {}
        for key, value in entry.items():
            if key in self.algorithm.counters:
                loaded[key] = self.algorithm.load_counter(f"{where}[{key!r}]", key, value)
                continue
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{where}[{key!r}] must be a numpy.ndarray, got {type(value).__name__}")
            shape = self.algorithm.buffer_shape(key, param.shape)
            if shape is None:
                raise ValueError(f"{where}[{key!r}]: a parameter of shape {param.shape} has no {key!r}")
            dtype = state_dtype(param.dtype)  # float32 for a float16 or bfloat16 parameter
            if value.shape != shape or value.dtype != dtype:
                raise ValueError(
                    f"{where}[{key!r}] has shape {value.shape} and dtype {value.dtype}, but its "
                    f"parameter (shape {param.shape}, dtype {param.dtype}) needs shape {shape} and dtype {dtype}"
                    if shape != param.shape or dtype != param.dtype else
                    f"{where}[{key!r}] has shape {value.shape} and dtype {value.dtype}, but its "
                    f"parameter has shape {param.shape} and dtype {param.dtype}"
                )
            loaded[key] = aligned_copy(value)
        return loaded

