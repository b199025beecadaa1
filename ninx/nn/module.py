"""`Module`, the base of every layer and model, and `Parameter`, a tensor that a module learns.

A module finds its parameters, buffers and sub-modules by attribute assignment (`self.conv = Conv2d(…)`), so
`parameters()`, `state_dict()`, `to()` and `train()`/`eval()` reach the whole tree without bookkeeping in the
subclasses — PyTorch's design, which makes ninx models read like PyTorch ones.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import no_grad
from ..tensor import FLOAT_DTYPES, Movable, Tensor, parse_to, tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """What `register_forward_hook` returns: `remove()` takes the hook out again."""

    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


class Parameter(Tensor):
    """A tensor registered as learnable when assigned to a Module attribute; requires grad by default."""

    def __init__(self, data, requires_grad=True):
        source = data if isinstance(data, Tensor) else tensor(data)
        super().__init__(source.data, source.backend, requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module(Movable):
    """A layer or a model: holds parameters, buffers and sub-modules; subclasses define `forward`."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *inputs, **kwargs):
        """forward(), between the forward pre-hooks and hooks, as PyTorch: a pre-hook may return new inputs,
        a hook a new output."""
        for hook in list(self._forward_pre_hooks.values()):
            changed = hook(self, inputs)
            if changed is not None:
                inputs = changed if isinstance(changed, tuple) else (changed,)
        output = self.forward(*inputs, **kwargs)
        for hook in list(self._forward_hooks.values()):
            changed = hook(self, inputs, output)
            if changed is not None:
                output = changed
        return output

    def register_forward_pre_hook(self, hook):
        """Call hook(module, inputs) before each forward; returns a handle whose remove() undoes it."""
        return self._add_hook(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook):
        """Call hook(module, inputs, output) after each forward; returns a handle whose remove() undoes it."""
        return self._add_hook(self._forward_hooks, hook)

    @staticmethod
    def _add_hook(hooks, hook):
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
        key = max(hooks, default=-1) + 1
        hooks[key] = hook
        return RemovableHandle(hooks, key)

    # ---- registration by attribute ----------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                 f"assigning {name!r}")
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif name in self._buffers:
            self.register_buffer(name, value, persistent=name not in self._non_persistent)
        elif name in self._parameters or name in self._modules:
            if value is not None:
                kind = "parameter" if name in self._parameters else "sub-module"
                raise TypeError(f"cannot assign a {type(value).__name__} to {kind} {name!r}: a "
                                f"{'Parameter' if kind == 'parameter' else 'Module'} or None is expected")
            (self._parameters if name in self._parameters else self._modules)[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Drop `name` from every registry and from the instance dict, before it is registered anew."""
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        if any(name in r for r in (self._parameters, self._buffers, self._modules)):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register `param` (a Parameter, or None for an absent optional one such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"parameter {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, value, persistent=True):
        """Register a tensor that is state but not learnt (running statistics); in state_dict if persistent."""
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(value).__name__}")
        self._forget(name)
        self._buffers[name] = value
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name!r} must be a Module or None, got {type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    # ---- walking the tree -------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(qualified name, module) for this module and every descendant, depth first, each once."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, m) for child, m in module._modules.items()
                        if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((name, m) for name, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, registry, recurse):
        seen = set()
        for prefix, module in self.named_modules() if recurse else [("", self)]:
            for name, value in getattr(module, registry).items():
                if value is not None and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self, recurse=True):
        """(qualified name, Parameter) for every parameter, each once even when shared."""
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse))

    def named_buffers(self, recurse=True):
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse))

    def apply(self, fn):
        """Call fn on every module of the tree, children before their parent (as PyTorch); return self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes, gradients, devices ----------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (dropout drops, batch norm uses batch statistics) on the whole tree."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients of every parameter (set to None, PyTorch's default), or zero them in place."""
        zero_grads(self.parameters(), set_to_none)

    def to(self, *args, device=None, dtype=None):
        """Move every parameter and buffer to a device ('cpu', 'cuda') and/or cast floating ones to a dtype.

        As PyTorch: `to(device)`, `to(dtype)`, `to(device, dtype)`, `to(tensor)` or keywords. Tensors are
        changed in place, so an optimizer built before the move still holds the same parameters.
        """
        device, dtype = parse_to(args, device, dtype)
        if dtype is not None and dtype not in FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}.to: modules can be cast to float32 or float64 only, got {dtype}")
        with no_grad():
            for t in list(self.parameters()) + list(self.buffers()):
                # integer buffers (a batch counter) keep their type, as in PyTorch
                target = dict(device=device, dtype=dtype if t.dtype in FLOAT_DTYPES else None)
                moved = t.to(**target)
                if moved is not t:
                    t.data, t.backend = moved.data, moved.backend
                    t.bump_version()
                if t.grad is not None:
                    grad = t.grad.to(**target)
                    t.grad = Tensor(grad.data, grad.backend)
        return self


    # ---- state ------------------------------------------------------------------------------------
    def state_dict(self):
        """Ordered {qualified name: tensor} of parameters and persistent buffers.

        The tensors share memory with the module (as in PyTorch): copy them to keep a snapshot.
        """
        state = OrderedDict()
        for prefix, module in self.named_modules():
            persistent = [(n, b) for n, b in module._buffers.items() if n not in module._non_persistent]
            for name, value in list(module._parameters.items()) + persistent:
                if value is not None:
                    state[f"{prefix}.{name}" if prefix else name] = value.detach()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy tensors (or arrays) into the parameters and buffers of the same names, in place.

        Every missing, unexpected and mis-shaped name is reported at once, in one ValueError raised before
        anything is copied; strict=False allows missing and unexpected names (never a wrong shape) and loads
        the rest. Values are cast to each tensor's dtype and moved to its device. Returns
        (missing_keys, unexpected_keys), as PyTorch.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        misshaped = []
        for name, target in own.items():
            if name in state_dict:
                value = state_dict[name]
                shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
                if shape != target.shape:
                    misshaped.append(f"{name!r}: {shape} in the state dict, {target.shape} in the module")
        if misshaped or (strict and (missing or unexpected)):
            problems = [f"missing keys {missing}"] if strict and missing else []
            problems += [f"unexpected keys {unexpected}"] if strict and unexpected else []
            problems += [f"wrong shapes: {'; '.join(misshaped)}"] if misshaped else []
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + ", ".join(problems))
        with no_grad():
            for name, target in own.items():
                if name in state_dict:
                    target.data[...] = tensor(state_dict[name], dtype=target.dtype, device=target.device).data
        for param in self.parameters():
            param.bump_version()
        for buffer in self.buffers():
            buffer.bump_version()
        return IncompatibleKeys(missing, unexpected)

    # ---- printing ---------------------------------------------------------------------------------
    def extra_repr(self):
        """The arguments shown between the parentheses of this module's repr."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        head = [self.extra_repr()] if self.extra_repr() else []
        return f"{type(self).__name__}(\n  " + "\n  ".join(head + lines) + "\n)"


def zero_grads(parameters, set_to_none=True):
    """Set each parameter's gradient to None, or (set_to_none=False) to zeros in place, as PyTorch."""
    for p in parameters:
        if set_to_none or p.grad is None:
            p.grad = None
        else:
            p.grad.data[...] = 0
