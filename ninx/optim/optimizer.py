"""`Optimizer`: parameter groups with their hyperparameters, per-parameter state, and a state_dict that
round-trips exactly, so that a resumed run continues bit for bit.

Updates work on the raw arrays (`p.data`, `p.grad.data`) with the parameter's array module `p.backend.xp`,
in place, under `no_grad`, so one implementation serves every device.
"""
import copy
import math

from ..autograd import no_grad
from ..nn.module import zero_grads
from ..tensor import Tensor, tensor


class Optimizer:
    """Base class: subclasses set `defaults` and implement `update(group, p, grad, state)` for one parameter."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.param_groups = []
        self.state = {}  # Parameter → {name: array or number}
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a dict with "params" and any hyperparameters that differ from the defaults."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} optimizes Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__} can only optimize leaf tensors, got one of shape {p.shape}")
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in known for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter appears in more than one parameter group, or twice in one")
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown hyperparameters {sorted(unknown)}")
        for name, value in {**self.defaults, **group}.items():
            numbers = value if isinstance(value, tuple) else (value,)
            if name != "params" and any(not math.isfinite(v) for v in numbers if isinstance(v, (int, float))):
                raise ValueError(f"{type(self).__name__}: {name} must be finite, got {value}")
        self.param_groups.append({**self.defaults, **group, "params": params})

    def zero_grad(self, set_to_none=True):
        """Forget the gradients of every parameter (set to None, PyTorch's default), or zero them in place."""
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self):
        """Update every parameter that has a gradient, once."""
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self.update(group, p, p.grad.data, self.state.setdefault(p, {}))
                        p.bump_version()  # a graph that saved p before this step can no longer run backward

    def update(self, group, p, grad, state):
        raise NotImplementedError

    # ---- checkpoints ------------------------------------------------------------------------------
    def state_dict(self):
        """{"state": {index: {name: Tensor or number}}, "param_groups": [hyperparameters, "params": indices]}.

        Parameters are numbered in group order, as PyTorch does; the tensors share memory with the optimizer.
        """
        index, groups = {}, []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: {k: Tensor(v, p.backend) if hasattr(v, "shape") else v for k, v in s.items()}
                 for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by `state_dict` (of an optimizer over the same parameters)."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups) or any(
                len(s["params"]) != len(g["params"]) for s, g in zip(saved, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved groups hold "
                             f"{[len(s['params']) for s in saved]} parameters, this optimizer's "
                             f"{[len(g['params']) for g in self.param_groups]}")
        by_index = {}
        for s, group in zip(saved, self.param_groups):
            by_index.update(zip(s["params"], group["params"]))
            group.update({k: copy.deepcopy(v) for k, v in s.items() if k != "params"})
        self.state = {}
        for i, entries in state_dict["state"].items():
            p = by_index[int(i)]
            self.state[p] = {k: _copy_to(v, p) for k, v in entries.items()}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in group.items() if k != "params"]
        return "\n".join(lines + [")"])


def _copy_to(value, p):
    """A saved state entry as a fresh array on p's device in p's dtype (numbers are kept as they are)."""
    if isinstance(value, Tensor) or hasattr(value, "shape"):
        if tuple(value.shape) != p.shape:
            raise ValueError(f"optimizer state of shape {tuple(value.shape)} for a parameter of shape {p.shape}")
        return tensor(value, dtype=p.dtype, device=p.device).data
    return value
