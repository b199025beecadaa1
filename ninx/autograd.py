"""The define-by-run graph: a `Function` records its inputs when applied; `backward` walks the graph.

Each op is one `Function` subclass whose `forward` and `backward` work on raw arrays (numpy, or cupy on the
GPU) through the backend of its inputs. Outputs are held by weak references and, unless `retain_graph`, each
node's saved arrays are released as the backward walk passes it, so a training loop's memory stays flat
(DeZero's design). A released node stays in the graph as a marker: a second backward through it raises, as
PyTorch does, instead of treating the tensors above it as leaves and silently dropping their gradients.

Every tensor carries a version counter that in-place changes bump (optimizer steps, `copy_`, `zero_`, …); a
node remembers the versions of its inputs and outputs and refuses to run backward on values changed since.
The walk is iterative, ordered by generation (a node's generation is one more than its newest input's), so
depth is not limited by Python's recursion limit.
"""
import contextlib
import heapq
import itertools
import sys
import weakref

from . import tensor  # each other's: tensor.py imports this module first, and apply reads tensor's names

_grad_enabled = True


def is_grad_enabled():
    """True unless inside `no_grad()` / `inference_mode()`."""
    return _grad_enabled


@contextlib.contextmanager
def set_grad_enabled(mode):
    """Record the graph inside the block when `mode` is true, not when false; usable as a decorator too."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(mode)
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad():
    """Run ops without recording the graph (inference, optimizer updates)."""
    return set_grad_enabled(False)


def enable_grad():
    """Record the graph again inside a `no_grad()` block."""
    return set_grad_enabled(True)


def inference_mode(mode=True):
    """PyTorch's inference mode: in ninx the same as `no_grad()` (no graph is recorded, nothing is saved)."""
    return set_grad_enabled(not mode)


class Function:
    """One differentiable op. Subclasses define `forward(*arrays)` and `backward(*grad_outputs)`.

    `forward` returns an array or a tuple of arrays; `backward` returns one gradient (or None) per input.
    `self.backend` is the inputs' backend (kernel table and array module `xp`); `self.needs_grad[i]` says
    whether input i wants a gradient, so backward may skip work.
    """

    released = False

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors and, when any input requires grad, record it in the graph. (A tiny layer's
        op costs little more than this: list comprehensions over the inputs, not generators, and one pass
        for what the graph records.)"""
        Tensor = tensor.Tensor
        fn = cls(**params)
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        fn.backend = tensors[0].backend if len(tensors) == 1 else tensor.common_backend(tensors)
        raw = fn.forward(*[x.data if isinstance(x, Tensor) else x for x in inputs])
        backend = fn.backend  # read after forward: ToDevice sets its target there
        # reductions to a scalar give numpy scalars: asarray keeps every Tensor's data an array
        asarray = backend.xp.asarray
        several = isinstance(raw, tuple)
        outputs = tuple([Tensor(asarray(y), backend) for y in raw]) if several else (Tensor(asarray(raw), backend),)
        if _grad_enabled:
            needs_grad = tuple([isinstance(x, Tensor) and x.requires_grad for x in inputs])
            if True in needs_grad:
                fn.inputs, fn.needs_grad = inputs, needs_grad
                fn.input_versions = tuple([x._version for x in tensors])
                fn.generation = generation = max([x.generation for x in tensors])
                fn.outputs = [weakref.ref(y) for y in outputs]
                for y in outputs:
                    if y.dtype not in tensor.FLOAT_DTYPES:
                        continue  # integer outputs (the indices of max) are not differentiable
                    y.requires_grad = True
                    y.creator = fn
                    y.generation = generation + 1
        return outputs if several else outputs[0]

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError

    def name(self):
        """PyTorch's spelling of a graph node: `MulBackward`, `Conv2dBackward`, …"""
        return f"{type(self).__name__}Backward"

    def __repr__(self):
        return f"<{self.name()}{' (released)' if self.released else ''}>"

    def check_versions(self, outputs):
        """Raise if an input or a live output was changed in place after this node saved it."""
        from .tensor import Tensor
        inputs = [x for x in self.inputs if isinstance(x, Tensor)]
        for x, saved in zip(inputs, self.input_versions):
            if x._version != saved:
                raise RuntimeError(f"one of the tensors needed for gradient computation has been modified by an "
                                   f"in-place operation: an input of shape {x.shape} of {self.name()} is at "
                                   f"version {x._version}, expected version {saved}")
        for y in outputs:
            if y is not None and y._version != 0:
                raise RuntimeError(f"the output of shape {y.shape} of {self.name()} was modified in place "
                                   f"(version {y._version}) before backward")

    def release(self):
        """Drop inputs, outputs and saved arrays so the memory of this step can be freed; keep a marker."""
        for name in list(vars(self)):
            if name not in ("backend", "generation"):
                delattr(self, name)
        self.released = True


def _owned(g):
    """Whether `g`, held once by the caller, is the only way to its memory: an array that owns its data, that
    no view, list or other object refers to. A leaf may then keep it as its .grad instead of a copy (PyTorch's
    AccumulateGrad steals such a gradient too): a pooling or ReLU backward's input-sized gradient is not
    copied once more. Without reference counts (not CPython), or without a writeable flag to read (cupy's
    arrays), nothing counts as owned."""
    if not hasattr(sys, "getrefcount") or getattr(g, "base", True) is not None:
        return False
    return bool(getattr(g.flags, "writeable", False)) and sys.getrefcount(g) <= 3  # caller, argument, getrefcount


def backward(root, grad, retain_graph=False):
    """Accumulate d(root)/d(leaf) into `.grad` of every leaf that requires grad; free the graph unless
    `retain_graph`."""
    grads = {id(root): grad}           # pending output gradients, by tensor identity
    keep = {id(root): root}            # tensors with pending gradients stay alive, so their ids stay unique
    order = itertools.count()          # tie-break so the heap never compares Functions
    heap = []
    seen = set()
    visited = []

    def push(fn):
        if fn.released:
            raise RuntimeError(f"trying to backward through the graph a second time: {fn.name()} was freed by "
                               f"an earlier backward(); call backward(retain_graph=True) the first time to keep "
                               f"the graph, or rebuild it")
        if id(fn) not in seen:
            seen.add(id(fn))
            heapq.heappush(heap, (-fn.generation, next(order), fn))

    if root.creator is None:
        root._accumulate(grad)
        return
    push(root.creator)
    while heap:
        _, _, fn = heapq.heappop(heap)
        visited.append(fn)
        outputs = [ref() for ref in fn.outputs]
        fn.check_versions(outputs)
        gys = []
        for y in outputs:
            g = grads.pop(id(y), None) if y is not None else None
            keep.pop(id(y), None)
            gys.append(g if g is not None else (fn.backend.xp.zeros_like(y.data) if y is not None else None))
        with no_grad():
            gxs = fn.backward(*gys)
        gxs = list(gxs) if isinstance(gxs, tuple) else [gxs]
        for i, (x, wanted) in enumerate(zip(fn.inputs, fn.needs_grad)):
            gx, gxs[i] = gxs[i], None  # from here on this frame holds gx once, in `gx`
            if not wanted or gx is None:
                continue
            if x.creator is None:
                owned = _owned(gx)  # its own statement: no other reference to gx is pending in this frame
                x._accumulate(gx, owned)
            else:
                grads[id(x)] = gx if id(x) not in grads else grads[id(x)] + gx
                keep[id(x)] = x
                push(x.creator)
        if not retain_graph:
            fn.release()
