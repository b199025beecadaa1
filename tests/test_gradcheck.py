"""ninx.testing.gradcheck: it passes right gradients, catches wrong ones (including errors that cancel in
loss = sum(out) and errors hidden in one Jacobian entry), works in float64 whatever the inputs' dtype, and
steps off kinks instead of loosening its tolerance."""
import numpy as np
import pytest

import ninx
from ninx.autograd import Function
from ninx.nn import functional as F
from ninx.testing import GradcheckError, gradcheck


def leaf(values, device, dtype=np.float64):
    return ninx.tensor(values, dtype=dtype, requires_grad=True, device=device)


class ScaledSquare(Function):
    """y = x², with a backward that is off by a factor at one flat position (None: right everywhere)."""

    def __init__(self, wrong_at=None, factor=1.0):
        self.wrong_at, self.factor = wrong_at, factor

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        g = 2 * self.x * gy
        if self.wrong_at is not None:
            g = g.copy()
            g.reshape(-1)[self.wrong_at] *= self.factor
        return g


class ReversedGradient(Function):
    """y = x (identity) whose backward returns gy reversed: Jᵀ is a permutation, not the identity. The
    gradient of sum(y) is still all ones, so a check through loss = sum(out) cannot see the error."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy[::-1].copy()


class LeakyCopy(Function):
    """y = x whose backward also leaks a 1e-3 share of gy[0] into gx[1]: one wrong off-diagonal entry."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        g = gy.copy()
        g[1] += 1e-3 * gy[0]
        return g


def test_right_gradients_pass(device):
    rng = np.random.default_rng(0)
    x, w = leaf(rng.standard_normal((3, 4)), device), leaf(rng.standard_normal((4, 2)), device)
    assert gradcheck(lambda a, b: (a @ b).exp() * 0.5 - a.sum(dim=1, keepdim=True), [x, w])
    assert gradcheck(lambda a: ScaledSquare.apply(a), [leaf(rng.standard_normal(50), device)])


@pytest.mark.parametrize("size", [5, 500])  # full Jacobian, random projections
def test_a_planted_wrong_gradient_is_caught(device, size):
    x = leaf(np.random.default_rng(1).uniform(0.5, 1.5, size), device)
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda t: ScaledSquare.apply(t, wrong_at=size // 2, factor=1.01), [x])


@pytest.mark.parametrize("size", [6, 400])
def test_errors_that_cancel_in_a_summed_loss_are_caught(device, size):
    x = leaf(np.arange(size, dtype=np.float64), device)
    summed = leaf(np.arange(size, dtype=np.float64), device)
    ReversedGradient.apply(summed).sum().backward()
    assert np.array_equal(summed.grad.numpy(), np.ones(size))  # the naive check is fooled
    with pytest.raises(GradcheckError):
        gradcheck(ReversedGradient.apply, [x])


@pytest.mark.parametrize("seed", range(5))
def test_one_wrong_jacobian_entry_of_a_tiny_function_is_always_caught(device, seed):
    """On tiny inputs every entry of the Jacobian is compared, so no choice of random directions misses it."""
    x = leaf(np.random.default_rng(seed).standard_normal(4), device)
    with pytest.raises(GradcheckError):
        gradcheck(LeakyCopy.apply, [x], seed=seed)


def test_float32_inputs_are_checked_in_float64(device):
    """Differences over a step of 1e-6 would be noise in float32; the check evaluates in float64 and passes."""
    x = leaf(np.linspace(0.5, 1.5, 7), device, np.float32)
    assert gradcheck(lambda t: t.exp() * t, [x])
    seen = []
    gradcheck(lambda t: seen.append(t.dtype) or t * 2, [x])
    assert set(seen) == {np.dtype(np.float64)}


def test_only_inputs_that_require_grad_are_checked(device):
    x = leaf(np.ones(3), device)
    constant = ninx.tensor(np.ones(3), dtype=np.float64, device=device)  # its gradient would be wrong
    assert gradcheck(lambda a, c: a * 2 + ScaledSquare.apply(c, wrong_at=0, factor=3.0), [x, constant])


class SteepRelu(Function):
    """max(x, 0) whose backward claims a slope of 1.5 on the positive side."""

    def forward(self, x):
        self.x = x
        return x * (x > 0)

    def backward(self, gy):
        return 1.5 * gy * (self.x > 0)


def test_relu_exactly_at_its_kink_is_stepped_off_not_tolerated(device):
    assert gradcheck(F.relu, [leaf(np.array([0.0, 0.0, 1.0, -1.0, 0.0]), device)])
    # every input on the kink: the check moves off it and still sees the wrong slope
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(SteepRelu.apply, [leaf(np.zeros(6), device)])


def test_tied_maxima_are_stepped_off(device):
    x = leaf(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), device)
    assert gradcheck(lambda t: t.amax(dim=1), [x])
    pool_input = leaf(np.ones((1, 1, 4, 4)), device)  # every window is a four-way tie
    assert gradcheck(lambda t: F.max_pool2d(t, 2), [pool_input])


def test_a_function_that_is_a_kink_everywhere_is_reported(device):
    """floor(x·1e7) jumps every 1e-7: no smooth point lies nearby, and the check says so instead of passing."""
    x = leaf(np.array([0.0, 1.0]), device)

    class Floor(Function):
        def forward(self, a):
            return np.floor(a * 1e7)

        def backward(self, gy):
            return gy * 0

    with pytest.raises(GradcheckError):
        gradcheck(Floor.apply, [x])
