"""The graph walk: iterative (deeper than Python's recursion limit), ordered so every node's gradient is
complete before it is passed on, accumulating across backward calls, and freeing the graph afterwards so a
training loop's memory stays flat."""
import contextlib
import gc
import sys
import tracemalloc
import weakref

import numpy as np

import ninx
from ninx.nn import functional as F


@contextlib.contextmanager
def gc_disabled():
    """Reference counting alone must free the graph: a cycle would keep it alive here."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def leaf(values, device, dtype=np.float64):
    return ninx.tensor(values, dtype=dtype, requires_grad=True, device=device)


def test_a_chain_deeper_than_the_recursion_limit_backpropagates(device):
    depth = max(5000, 3 * sys.getrecursionlimit())
    x = leaf([1.0, 2.0], device)
    y = x
    for _ in range(depth):
        y = y * 1.0 + x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [depth + 1, depth + 1])


def test_a_deep_graph_dropped_without_backward_is_freed(device):
    x = leaf([1.0], device)
    y = x
    for _ in range(max(5000, 3 * sys.getrecursionlimit())):
        y = y + x
    probe = weakref.ref(y.creator)
    del y
    assert probe() is None


def test_gradients_accumulate_across_backward_calls_until_zeroed(device):
    x = leaf([1.0, -2.0, 3.0], device)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, -4, 6])
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5, -1, 9])
    x.zero_grad_()
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1, 1])


def test_a_tensor_used_on_several_paths_sums_their_gradients(device):
    x = leaf([0.5, -1.0], device)
    a = x * 3.0
    (a * a + a).sum().backward()  # d/dx = (2a + 1) · 3
    np.testing.assert_allclose(x.grad.numpy(), (2 * 3 * np.array([0.5, -1.0]) + 1) * 3, rtol=1e-15)


def test_a_node_passes_its_gradient_on_only_once_it_is_complete(device):
    """a feeds a long branch and a short one; its creator must wait for both (the walk goes by generation)."""
    x = leaf([0.3, 0.7], device)
    calls = []
    a = x.exp()
    exp = type(a.creator)
    original = exp.backward

    def counting(self, gy):
        calls.append(gy.copy())
        return original(self, gy)
    exp.backward = counting
    try:
        long_branch = a * 2.0 * 2.0 * 2.0
        (a + long_branch).sum().backward()
    finally:
        exp.backward = original
    assert len(calls) == 1
    np.testing.assert_allclose(x.grad.numpy(), 9 * np.exp([0.3, 0.7]), rtol=1e-14)


def test_a_0d_leaf_gets_a_0d_array_gradient_also_when_accumulating(device):
    """numpy arithmetic on 0-d arrays returns scalars; the gradient must still be an array tensor."""
    x = leaf(3.0, device)
    for expected in (6.0, 12.0):
        (x * x).backward()
        assert x.grad.shape == () and x.grad.numpy().shape == () and x.grad.item() == expected


def test_backward_takes_an_explicit_gradient_for_a_non_scalar(device):
    x = leaf([[1.0, 2.0], [3.0, 4.0]], device)
    (x * x).backward(np.array([[1.0, 0.0], [0.5, 2.0]]))
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 0], [3, 16]])


def test_no_grad_records_nothing_and_detach_cuts_the_graph(device):
    x = leaf([1.0, 2.0], device)
    with ninx.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.creator is None and ninx.is_grad_enabled()
    z = (x * 2.0).detach()
    assert not z.requires_grad
    w = (x * z).sum()  # z is a constant here
    w.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 4])


def test_outputs_require_grad_exactly_when_an_input_does(device):
    a = ninx.tensor([1.0], device=device)
    b = leaf([2.0], device, np.float32)
    assert not (a * 2.0).requires_grad
    assert (a * b).requires_grad and (a * b).creator is not None
    assert not (b > 1.0).requires_grad  # comparisons give masks outside the graph


def test_the_graph_and_its_intermediate_arrays_are_freed_after_backward(device):
    x = leaf(np.linspace(-1, 1, 12).reshape(3, 4), device)
    w = leaf(np.linspace(0, 1, 8).reshape(4, 2), device)
    # the kernels compiled first: Numba's compiler (with a cold cache) leaves reference cycles through the
    # frames that called it, their arrays among them, which only the cyclic collector frees
    F.relu(x @ w).exp().sum().backward()
    x.grad = w.grad = None
    with gc_disabled():
        hidden = F.relu(x @ w)
        probes = [weakref.ref(hidden.data), weakref.ref(hidden.creator), weakref.ref(hidden.creator.inputs[0].data)]
        out = hidden.exp()
        probes += [weakref.ref(out.creator), weakref.ref(out.creator.y)]
        loss = out.sum()
        del hidden, out
        assert all(p() is not None for p in probes)  # the graph holds them until backward
        loss.backward()
        assert [p() for p in probes] == [None] * len(probes)
        assert loss.creator.released and x.grad is not None and w.grad is not None


def test_a_graph_dropped_without_backward_is_freed_by_reference_counting(device):
    with gc_disabled():
        x = leaf(np.ones((2, 3)), device)
        hidden = (x * 2.0).exp()
        probes = [weakref.ref(hidden.data), weakref.ref(hidden.creator)]
        loss = hidden.sum()
        del hidden
        assert all(p() is not None for p in probes)
        del loss
        assert [p() for p in probes] == [None, None]


def test_a_training_loop_keeps_its_memory_flat(device):
    """Forward, backward and an update, repeated: the memory held between steps does not grow with the steps
    (one leaked graph of this small net would add over 20 KB a step)."""
    rng = np.random.default_rng(0)
    w = leaf(rng.standard_normal((4, 3, 3, 3)) * 0.1, device, np.float32)
    v = leaf(rng.standard_normal((5, 4)) * 0.1, device, np.float32)
    x = ninx.tensor(rng.standard_normal((2, 3, 8, 8)), dtype=np.float32, device=device)
    labels = np.array([1, 3])

    def step():
        h = F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2)
        logits = F.linear(F.global_avg_pool2d(h).flatten(1), v)
        F.cross_entropy(logits, labels).backward()
        with ninx.no_grad():
            for p in (w, v):
                p.data -= 0.01 * p.grad.data
                p.zero_grad_()

    def held():
        gc.collect()  # also empties CPython's free lists, which tracemalloc counts as held
        return tracemalloc.get_traced_memory()[0]

    step()  # compile first: Numba's compiler allocates under tracemalloc's hooks at a crawl
    tracemalloc.start()
    try:
        for _ in range(90):  # warm caches (JIT dispatch, GEMM workspaces, numpy's small internal caches), which
            # still grew by 6–7 KB over steps 30–90 on the 2-core Zen 5, and by 1–2 KB over 150–210
            step()
        early = held()
        for _ in range(60):
            step()
        late = held()
    finally:
        tracemalloc.stop()
    assert late - early < 32 * 1024, f"memory grew by {late - early} bytes over 60 steps"


class _Returns(ninx.autograd.Function):
    """y = x·1 whose backward hands out `make(gy)` for each input, remembering (weakly) what it handed out."""

    def __init__(self, make, handed):
        self.make, self.handed = make, handed

    def forward(self, *xs):
        return xs[0].copy()

    def backward(self, gy):
        grads = self.make(self, gy)
        for g in grads:
            self.handed.append(weakref.ref(g))
        return grads


def _backward_through(make, inputs, gradient, retain_graph=False):
    """(the output, the arrays its backward handed out, or None where they are gone)."""
    handed = []
    y = _Returns.apply(*inputs, make=make, handed=handed)
    y.backward(gradient, retain_graph=retain_graph)
    return y, [ref() for ref in handed]


def test_a_leaf_keeps_a_fresh_gradient_that_nothing_else_refers_to(device):
    """As PyTorch's AccumulateGrad steals it: an input-sized gradient (a pooling's, a ReLU's) is not copied."""
    x = leaf([1.0, 2.0, 3.0], device)
    _, (handed,) = _backward_through(lambda fn, gy: (gy * 2,), [x], ninx.tensor([1.0, 1.0, 1.0], device=device))
    assert handed is x.grad.data


def _and_a_view_of_it(fn, gy):
    g = gy * 2
    return g, g[::1]


def _kept(fn, gy):
    fn.kept = gy * 2
    return (fn.kept,)


def test_a_leaf_copies_a_gradient_that_anything_else_refers_to(device):
    """The caller's gradient, a view of it, one array handed to two leaves (the second may keep it, once the
    first has its copy), a view of another, or one the op keeps in a retained graph: each leaf's grad is its
    own memory, so changing it in place (an optimizer, clipping) changes nothing else."""
    given = ninx.tensor([1.0, 1.0, 1.0], device=device)
    xp = given.backend.xp  # numpy, or cupy on a GPU (numpy again under the emulator)
    a, b = leaf([1.0, 2.0, 3.0], device), leaf([4.0, 5.0, 6.0], device)
    cases = [([a], lambda fn, gy: (gy,)), ([a], lambda fn, gy: (gy.reshape(3),)), ([a], _kept),
             ([a, b], lambda fn, gy: ((gy * 2,) * 2)), ([a, b], _and_a_view_of_it)]
    for inputs, make in cases:
        a.grad = b.grad = None
        y, handed = _backward_through(make, inputs, given, retain_graph=True)
        grads = [x.grad.data for x in inputs]
        for g in grads:
            assert not xp.shares_memory(g, given.data)
        if make is _kept:
            assert not xp.shares_memory(grads[0], y.creator.kept)
        if len(grads) == 2:
            assert not xp.shares_memory(grads[0], grads[1])
