"""Check analytic gradients against float64 central differences.

For output directions u and input directions d, the analytic value uᵀ·J·d comes from one backward pass per
u (it gives Jᵀu) and the numeric value from (f(x + εd) − f(x − εd)) / 2ε. On tiny problems u and d run over
every basis vector, so the *whole* Jacobian is compared; on larger ones they are random unit vectors, so an
error anywhere in the Jacobian still shows (a single random index or loss = sum(out) lets errors cancel).

Kinks (ReLU at 0, tied maxima) are found, not tolerated: there the one-sided slopes differ by a jump that
stays the same when the step is halved (on a smooth function their difference is h·f'' and halves), so the
inputs are jittered to a nearby smooth point and the check starts again. Tolerances are never loosened.
"""
import numpy as np

from ..tensor import Tensor, tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences."""


class _NearKink(Exception):
    pass


def _float64_copies(inputs):
    arrays, wants, device = [], [], "cpu"
    for x in inputs:
        if isinstance(x, Tensor):
            arrays.append(np.array(x.numpy(), dtype=np.float64))
            wants.append(x.requires_grad)
            device = x.device
        else:
            arrays.append(np.array(x, dtype=np.float64))
            wants.append(True)
    return arrays, wants, device


def _directions(size, full, count, rng):
    """Basis vectors (full Jacobian) or `count` random unit vectors, as rows of a matrix."""
    if full:
        return np.eye(size)
    v = rng.standard_normal((count, size))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-6, rtol=1e-4, full_limit=64, projections=4, seed=0,
              max_jitters=8):
    """Raise GradcheckError unless fn's gradients w.r.t. every input that requires grad are right.

    `fn` maps Tensors to one Tensor. `inputs` are Tensors (only those with requires_grad are checked) or
    arrays (all checked); they are copied to float64 on their device. The whole Jacobian is compared when
    every checked input and the output have at most `full_limit` elements, else `projections` random
    directions on each side. Returns True.
    """
    rng = np.random.default_rng(seed)
    arrays, wants, device = _float64_copies(inputs)
    for _ in range(max_jitters + 1):
        try:
            _check_at(fn, arrays, wants, device, eps, atol, rtol, full_limit, projections, rng)
            return True
        except _NearKink:
            # move every checked input by up to 1e-3 of its scale: a nearby point off the kink
            arrays = [a + rng.uniform(-1e-3, 1e-3, a.shape) * (1 + np.abs(a)) if w else a
                      for a, w in zip(arrays, wants)]
    raise GradcheckError(f"inputs stayed on a kink after {max_jitters} jitters")


def _evaluate(fn, arrays, wants, device, requires_grad):
    leaves = [tensor(a, dtype=np.float64, requires_grad=requires_grad and w, device=device)
              for a, w in zip(arrays, wants)]
    return leaves, fn(*leaves)


def _check_at(fn, arrays, wants, device, eps, atol, rtol, full_limit, projections, rng):
    leaves, y = _evaluate(fn, arrays, wants, device, requires_grad=True)
    y0 = np.array(y.numpy(), dtype=np.float64).reshape(-1)
    checked = [i for i, w in enumerate(wants) if w]
    full = y0.size <= full_limit and all(arrays[i].size <= full_limit for i in checked)
    out_dirs = _directions(y0.size, full, projections, rng)

    # analytic: one backward per output direction u gives Jᵀu for every input at once
    analytic = {i: [] for i in checked}
    for u in out_dirs:
        leaves, y = _evaluate(fn, arrays, wants, device, requires_grad=True)
        y.backward(u.reshape(y.shape))
        for i in checked:
            g = leaves[i].grad
            analytic[i].append(np.zeros(arrays[i].size) if g is None else g.numpy().reshape(-1).astype(np.float64))

    for i in checked:
        for d in _directions(arrays[i].size, full, projections, rng):
            def f(step):
                shifted = list(arrays)
                shifted[i] = arrays[i] + step * d.reshape(arrays[i].shape)
                return np.array(_evaluate(fn, shifted, wants, device, False)[1].numpy(), np.float64).reshape(-1)

            def bend(step):
                """(f(x+h) − 2f(x) + f(x−h)) / h: h·f'' where f is smooth, the slope's jump at a kink."""
                return out_dirs @ (f(step) - 2 * y0 + f(-step)) / step

            central = out_dirs @ (f(eps) - f(-eps)) / (2 * eps)
            tolerance = atol + rtol * np.abs(central)
            jump = np.abs(bend(eps))
            # a kink's jump does not shrink with the step; a smooth function's bend halves with it
            if np.any((jump > tolerance) & (np.abs(bend(eps / 2)) > 0.75 * jump)):
                raise _NearKink
            exact = np.array([g @ d for g in analytic[i]])
            bad = np.abs(exact - central) > tolerance
            if np.any(bad):
                k = int(np.argmax(bad))
                raise GradcheckError(
                    f"gradient of input {i} (shape {arrays[i].shape}) is wrong: along an input direction and "
                    f"output direction {k}, analytic {exact[k]:.8g} vs numeric {central[k]:.8g} "
                    f"({'full Jacobian' if full else 'random projections'}, eps={eps})")
