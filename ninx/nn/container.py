"""`Sequential`: modules applied one after another, named "0", "1", … (or by an OrderedDict's keys)."""
from collections import OrderedDict

from .conv import Conv2d
from .layers import ReLU, ReLU6
from .module import Module


def fused_cap(module, following):
    """The clamp cap (inf, 6) when `module` is a Conv2d whose output only `following`, a ReLU or ReLU6, reads:
    then the two run as one GEMM with bias and clamp in its write-back. None when they must run apart: other
    modules, or hooks on either (a hook may read the convolution's own output)."""
    if not isinstance(module, Conv2d) or type(module).forward is not Conv2d.forward:
        return None
    if type(following) not in (ReLU, ReLU6):
        return None
    if any(m._forward_hooks or m._forward_pre_hooks for m in (module, following)):
        return None
    return float("inf") if type(following) is ReLU else 6.0


class _Modules(Module):
    """What Sequential and ModuleList share: sub-modules named "0", "1", … in order, sized and iterable."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class Sequential(_Modules):
    """Applies its modules in order; indexable (`seq[0]`, `seq[1:]` is a Sequential), iterable, sized."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, input):
        """Apply the modules in order; a Conv2d followed by a ReLU or ReLU6 runs as one fused op (see
        `fused_cap`), which gives the same values and gradients."""
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            cap = fused_cap(modules[i], modules[i + 1] if i + 1 < len(modules) else None)
            if cap is None:
                input, i = modules[i](input), i + 1
            else:
                input, i = modules[i].forward_clamped(input, cap), i + 2
        return input

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]



class ModuleList(_Modules):
    """A list of modules, registered as "0", "1", … so their parameters are found; it has no forward."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def _key(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a ModuleList of {len(self)}")
        return list(self._modules)[index]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._key(index)]

    def __setitem__(self, index, module):
        self.add_module(self._key(index), module)


    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self
