"""The define-by-run graph: a `Function` records its inputs when applied; `backward` walks the graph.

Each op is one `Function` subclass whose `forward` and `backward` work on raw arrays (numpy, or cupy on the
GPU) through the backend of its inputs. Outputs are held by weak references and the graph is released after
the backward walk, so a training loop's memory stays flat (DeZero's design). The walk is iterative, ordered
by generation (a node's generation is one more than its newest input's), so depth is not limited by
Python's recursion limit.
"""
import contextlib
import heapq
import itertools
import weakref

_grad_enabled = True


def is_grad_enabled():
    """True unless inside `no_grad()`."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Run ops without recording the graph (inference, optimizer updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


class Function:
    """One differentiable op. Subclasses define `forward(*arrays)` and `backward(*grad_outputs)`.

    `forward` returns an array or a tuple of arrays; `backward` returns one gradient (or None) per input.
    `self.backend` is the inputs' backend (kernel table and array module `xp`); `self.needs_grad[i]` says
    whether input i wants a gradient, so backward may skip work.
    """

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors and, when any input requires grad, record it in the graph."""
        from .tensor import Tensor, common_backend
        fn = cls(**params)
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        fn.backend = common_backend(tensors)
        raw = fn.forward(*[x.data if isinstance(x, Tensor) else x for x in inputs])
        # reductions to a scalar give numpy scalars: asarray keeps every Tensor's data an array
        outputs = tuple(Tensor(fn.backend.xp.asarray(y), fn.backend)
                        for y in (raw if isinstance(raw, tuple) else (raw,)))
        if _grad_enabled and any(x.requires_grad for x in tensors):
            fn.inputs = inputs
            fn.needs_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
            fn.generation = max(x.generation for x in tensors)
            fn.outputs = [weakref.ref(y) for y in outputs]
            for y in outputs:
                y.requires_grad = True
                y.creator = fn
                y.generation = fn.generation + 1
        return outputs if isinstance(raw, tuple) else outputs[0]

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError

    def release(self):
        """Drop inputs, outputs and saved arrays so the memory of this step can be freed."""
        for name in list(vars(self)):
            if name not in ("backend", "generation"):
                delattr(self, name)


def backward(root, grad):
    """Accumulate d(root)/d(leaf) into `.grad` of every leaf that requires grad, then free the graph."""
    grads = {id(root): grad}           # pending output gradients, by tensor identity
    keep = {id(root): root}            # tensors with pending gradients stay alive, so their ids stay unique
    order = itertools.count()          # tie-break so the heap never compares Functions
    heap = []
    seen = set()

    def push(fn):
        if id(fn) not in seen:
            seen.add(id(fn))
            heapq.heappush(heap, (-fn.generation, next(order), fn))

    if root.creator is None:
        root._accumulate(grad)
        return
    push(root.creator)
    while heap:
        _, _, fn = heapq.heappop(heap)
        outputs = [ref() for ref in fn.outputs]
        gys = []
        for y in outputs:
            g = grads.pop(id(y), None) if y is not None else None
            keep.pop(id(y), None)
            gys.append(g if g is not None else (fn.backend.xp.zeros_like(y.data) if y is not None else None))
        with no_grad():
            gxs = fn.backward(*gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        for x, gx, wanted in zip(fn.inputs, gxs, fn.needs_grad):
            if not wanted or gx is None:
                continue
            if x.creator is None:
                x._accumulate(gx)
            else:
                grads[id(x)] = gx if id(x) not in grads else grads[id(x)] + gx
                keep[id(x)] = x
                push(x.creator)
        fn.release()
        for y in outputs:
            if y is not None:
                y.creator = None
