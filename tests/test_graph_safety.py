"""Autograd that refuses instead of silently dropping gradients: a freed graph raises on a second backward,
retain_graph keeps it, in-place changes of saved tensors are caught by the version counter, and bool() of a
tensor follows PyTorch."""
import numpy as np
import pytest

import ninx
from ninx.nn import functional as F


def leaf(values, device):
    return ninx.tensor(values, dtype=np.float64, requires_grad=True, device=device)


def test_two_losses_sharing_a_subgraph_raise_on_the_second_backward(device):
    # the bug: the second backward found the shared nodes freed, took them for leaves and gave p.grad = [2, 2, 2]
    p = leaf([1.0, 1.0, 1.0], device)
    shared = p * 2.0
    first, second = (shared * 3.0).sum(), (shared * 2.0).sum()
    first.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        second.backward()


def test_retain_graph_gives_the_sum_over_both_losses(device):
    p = leaf([1.0, 1.0, 1.0], device)
    shared = p * 2.0
    first, second = (shared * 3.0).sum(), (shared * 2.0).sum()
    first.backward(retain_graph=True)
    second.backward()
    np.testing.assert_array_equal(p.grad.numpy(), [10.0, 10.0, 10.0])  # d/dp (6p + 4p)


def test_retain_graph_lets_the_same_loss_backward_twice(device):
    x = leaf([1.0, 2.0], device)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_a_leaf_changed_in_place_after_use_refuses_backward(device):
    w = leaf([1.0, 2.0], device)
    loss = (w * w).sum()
    with ninx.no_grad():
        w.copy_(ninx.tensor([5.0, 5.0], dtype=np.float64, device=device))
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_an_optimizer_step_between_forward_and_backward_is_caught(device):
    w = ninx.nn.Parameter(ninx.tensor([1.0, 2.0], dtype=np.float64, device=device))
    optimizer = ninx.optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    optimizer.step()
    with pytest.raises(RuntimeError, match="version"):
        loss.backward()


def test_in_place_changes_of_a_tensor_that_requires_grad_are_refused_outside_no_grad(device):
    w = leaf([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.zero_()
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 3.0
    with ninx.no_grad():
        w[0] = 3.0
    assert w.tolist() == [3.0, 2.0]


def test_bool_of_one_element_is_its_value_and_of_several_an_error():
    assert not ninx.tensor(0.0) and ninx.tensor([2.0]) and not ninx.tensor([[False]])
    a, b = ninx.tensor([1.0, 2.0]), ninx.tensor([1.0, 3.0])
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(a == b)
    with pytest.raises(RuntimeError, match="ambiguous"):
        assert (a > 0)
    assert (a == b).any() and not (a == b).all() and (a > 0).all()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(ninx.zeros(0))
    assert float(ninx.tensor([2.5])) == 2.5 and int(ninx.tensor(3)) == 3 and [10, 20, 30][ninx.tensor(1)] == 20


def test_grad_fn_names_the_op_and_is_none_for_leaves(device):
    x = leaf([1.0, 2.0], device)
    assert x.grad_fn is None and x.is_leaf
    y = F.relu(x * 2.0)
    assert "ClampBackward" in repr(y.grad_fn) and "grad_fn=" in repr(y) and not y.is_leaf
    y.sum().backward()
    assert not y.is_leaf  # a freed node still marks a result of an op, not a leaf


def test_integer_outputs_of_an_op_do_not_require_grad(device):
    x = leaf([[1.0, 5.0], [4.0, 2.0]], device)
    values, indices = x.max(1)
    assert values.requires_grad and not indices.requires_grad and indices.dtype == np.int64
