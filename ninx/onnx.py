"""ONNX export: a model traced through the autograd graph that training records, written with the `onnx`
package's helpers and checked by `onnx.checker`.

    ninx.onnx.export(model, example_input, "model.onnx")

The model runs once in eval mode on `example_input` with gradients recorded, so every op leaves its Function
(with the geometry, caps and axes it was called with) in the graph; the walk from the output back to the
input visits them in dependency order and each becomes one or a few ONNX nodes. Parameters and buffers
become initializers under their state-dict names; other constants (a python number in `x * 2`) become
initializers too. The batch dimension is symbolic ("N"): a reshape that keeps its input's leading size keeps
it as ONNX's 0 ("copy this dimension"). An op with no mapping raises a NotImplementedError naming it.
"""
import os

import numpy as np

from .atomic import atomic_open
from .geometry import output_size
from .ops import (activation, adaptive_pool, arithmetic, batchnorm, conv, depthwise, loss, lrn, matmul, pool,
                  reduction, shape)
from .tensor import Tensor, tensor


class _Graph:
    """The ONNX nodes, initializers and tensor names of one export."""

    def __init__(self, onnx, names):
        self.onnx, self.helper = onnx, onnx.helper
        self.names = names           # id(tensor or array) → name
        self.nodes, self.initializers, self.count = [], [], 0

    def fresh(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def constant(self, array, stem="const"):
        """An initializer holding `array`; returns its name."""
        name = self.fresh(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def name_of(self, value):
        """The ONNX name of a Tensor (or raw array) that feeds a node; unnamed leaves become initializers."""
        key = id(value.data) if isinstance(value, Tensor) and id(value) not in self.names else id(value)
        if key not in self.names:
            data = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            self.names[key] = self.constant(data)
        return self.names[key]

    def node(self, op_type, inputs, outputs=None, **attributes):
        outputs = outputs or [self.fresh(op_type.lower())]
        self.nodes.append(self.helper.make_node(op_type, inputs, outputs, name=self.fresh(op_type), **attributes))
        return outputs[0]


def _pads(g):
    return [g.ph, g.pw, g.ph, g.pw]


def _ceil_mode(g):
    """Whether the window geometry was computed in ceil mode (it matters only where the sizes differ)."""
    return int((g.oh, g.ow) != (output_size(g.h, g.kh, g.sh, g.ph, g.dh), output_size(g.w, g.kw, g.sw, g.pw, g.dw)))


def _conv(graph, fn, inputs, out):
    """Conv, then Relu or Clip for a convolution fused with its activation (fn.cap)."""
    g = fn.geometry
    names = [graph.name_of(x) for x in inputs if x is not None]
    conv_out = out if fn.cap is None else graph.fresh("conv")
    graph.node("Conv", names, [conv_out], kernel_shape=[g.kh, g.kw], strides=[g.sh, g.sw], pads=_pads(g),
               dilations=[g.dh, g.dw], group=fn.groups)
    return out if fn.cap is None else _clamp_node(graph, conv_out, fn.cap, inputs[0].dtype, out)


def _clamp_node(graph, x, cap, dtype, out):
    if np.isinf(cap):
        return graph.node("Relu", [x], [out])
    return graph.node("Clip", [x, graph.constant(np.array(0, dtype)), graph.constant(np.array(cap, dtype))], [out])


def _depthwise(graph, fn, inputs, out):
    g = fn.geometry
    return graph.node("Conv", [graph.name_of(x) for x in inputs if x is not None], [out], kernel_shape=[g.kh, g.kw],
                      strides=[g.sh, g.sw], pads=_pads(g), dilations=[g.dh, g.dw], group=g.c)


def _silu(graph, fn, inputs, out):
    x = graph.name_of(inputs[0])
    return graph.node("Mul", [x, graph.node("Sigmoid", [x])], [out])


def _hardtanh(graph, fn, inputs, out):
    dtype = inputs[0].dtype
    return graph.node("Clip", [graph.name_of(inputs[0]), graph.constant(np.array(fn.low, dtype)),
                               graph.constant(np.array(fn.high, dtype))], [out])


def _adaptive_avg(graph, fn, inputs, out):
    """y = A_h · x · A_wᵀ with the op's own averaging matrices (see ninx/ops/adaptive_pool.py)."""
    rows = graph.node("MatMul", [graph.constant(fn.rows), graph.name_of(inputs[0])])
    return graph.node("MatMul", [rows, graph.constant(np.ascontiguousarray(fn.columns.T))], [out])


def _lrn(graph, fn, inputs, out):
    if fn.size % 2 == 0:  # ONNX's window leans the other way from PyTorch's for an even size
        raise NotImplementedError(f"ONNX export: local_response_norm with an even size ({fn.size}) has no ONNX "
                                  f"mapping that matches PyTorch's window")
    return graph.node("LRN", [graph.name_of(inputs[0])], [out], size=fn.size, alpha=fn.alpha, beta=fn.beta,
                      bias=fn.k)


def _clamp(graph, fn, inputs, out):
    return _clamp_node(graph, graph.name_of(inputs[0]), fn.cap, inputs[0].dtype, out)


def _clip(graph, fn, inputs, out):
    dtype = inputs[0].dtype
    bounds = [graph.constant(np.array(b, dtype)) if b is not None else "" for b in (fn.low, fn.high)]
    return graph.node("Clip", [graph.name_of(inputs[0])] + bounds, [out])


def _max_pool(graph, fn, inputs, out):
    g = fn.geometry
    return graph.node("MaxPool", [graph.name_of(inputs[0])], [out], kernel_shape=[g.kh, g.kw], strides=[g.sh, g.sw],
                      pads=_pads(g), dilations=[g.dh, g.dw], ceil_mode=_ceil_mode(g))


def _avg_pool(graph, fn, inputs, out):
    g = fn.geometry
    count_include_pad, divisor_override = fn.options
    if divisor_override:
        raise NotImplementedError("ONNX export: avg_pool2d with divisor_override has no ONNX mapping")
    return graph.node("AveragePool", [graph.name_of(inputs[0])], [out], kernel_shape=[g.kh, g.kw],
                      strides=[g.sh, g.sw], pads=_pads(g), ceil_mode=_ceil_mode(g),
                      count_include_pad=int(count_include_pad))


def _mean(graph, fn, inputs, out):
    x = inputs[0]
    if x.ndim == 4 and fn.dims == (2, 3) and fn.keepdim:
        return graph.node("GlobalAveragePool", [graph.name_of(x)], [out])
    return graph.node("ReduceMean", [graph.name_of(x)], [out], axes=list(fn.dims), keepdims=int(fn.keepdim))


def _sum(graph, fn, inputs, out):
    axes = graph.constant(np.array(fn.dims, np.int64), "axes")
    return graph.node("ReduceSum", [graph.name_of(inputs[0]), axes], [out], keepdims=int(fn.keepdim))


def _reshape(graph, fn, inputs, out):
    target = list(np.empty(fn.x_shape, dtype=np.int8).reshape(fn.shape).shape)  # -1 resolved
    if target and fn.x_shape and target[0] == fn.x_shape[0]:
        target[0] = 0  # keep the (symbolic) batch dimension of the input
    return graph.node("Reshape", [graph.name_of(inputs[0]), graph.constant(np.array(target, np.int64), "shape")],
                      [out])


def _batch_norm(graph, fn, inputs, out):
    if fn.training:
        raise NotImplementedError("ONNX export: batch_norm with batch statistics (training=True); export in eval "
                                  "mode with running statistics")
    x, weight, bias = (list(inputs) + [None, None])[:3]
    channels, dtype = x.shape[1], x.dtype
    scale = graph.name_of(weight) if weight is not None else graph.constant(np.ones(channels, dtype))
    shift = graph.name_of(bias) if bias is not None else graph.constant(np.zeros(channels, dtype))
    return graph.node("BatchNormalization", [graph.name_of(x), scale, shift, graph.name_of(fn.running_mean),
                                             graph.name_of(fn.running_var)], [out], epsilon=fn.eps,
                      momentum=1 - fn.momentum)


def _elementwise(op_type):
    return lambda graph, fn, inputs, out: graph.node(op_type, [graph.name_of(x) for x in inputs], [out])


def _attribute(op_type, **attributes):
    """An op whose ONNX attributes come from the Function: {onnx name: Function → value}."""
    return lambda graph, fn, inputs, out: graph.node(op_type, [graph.name_of(x) for x in inputs], [out],
                                                     **{k: get(fn) for k, get in attributes.items()})


def _pow(graph, fn, inputs, out):
    exponent = graph.constant(np.array(fn.exponent, inputs[0].dtype))
    return graph.node("Pow", [graph.name_of(inputs[0]), exponent], [out])


def _cast(graph, fn, inputs, out):
    to = graph.helper.np_dtype_to_tensor_dtype(np.dtype(fn.dtype))
    return graph.node("Cast", [graph.name_of(inputs[0])], [out], to=to)


MAPPINGS = {
    conv.Conv2d: _conv,
    activation.Clamp: _clamp,
    activation.Sigmoid: _elementwise("Sigmoid"),
    arithmetic.Clip: _clip,
    pool.MaxPool2d: _max_pool,
    pool.AvgPool2d: _avg_pool,
    reduction.Mean: _mean,
    reduction.Sum: _sum,
    shape.Reshape: _reshape,
    shape.Permute: _attribute("Transpose", perm=lambda fn: list(fn.dims)),
    shape.Cat: _attribute("Concat", axis=lambda fn: fn.dim),
    matmul.MatMul: _elementwise("MatMul"),
    arithmetic.Add: _elementwise("Add"),
    arithmetic.Sub: _elementwise("Sub"),
    arithmetic.Mul: _elementwise("Mul"),
    arithmetic.Div: _elementwise("Div"),
    arithmetic.Neg: _elementwise("Neg"),
    arithmetic.Exp: _elementwise("Exp"),
    arithmetic.Log: _elementwise("Log"),
    arithmetic.Sqrt: _elementwise("Sqrt"),
    arithmetic.Abs: _elementwise("Abs"),
    arithmetic.Clone: _elementwise("Identity"),
    arithmetic.Pow: _pow,
    arithmetic.Cast: _cast,
    loss.Softmax: _attribute("Softmax", axis=lambda fn: fn.dim),
    loss.LogSoftmax: _attribute("LogSoftmax", axis=lambda fn: fn.dim),
    batchnorm.BatchNorm: _batch_norm,
    depthwise.DepthwiseConv2d: _depthwise,
    activation.SiLU: _silu,
    activation.Hardtanh: _hardtanh,
    activation.Hardsigmoid: _attribute("HardSigmoid", alpha=lambda fn: 1 / 6, beta=lambda fn: 0.5),
    activation.Hardswish: _elementwise("HardSwish"),
    adaptive_pool.AdaptiveAvgPool2d: _adaptive_avg,
    lrn.LocalResponseNorm: _lrn,
}


def _functions_in_order(output):
    """The graph's Functions from the input to `output`, each after every Function it depends on."""
    order, done, stack = [], set(), [(output.creator, False)]
    while stack:
        fn, expanded = stack.pop()
        if fn is None or id(fn) in done:
            continue
        if expanded:
            done.add(id(fn))
            order.append(fn)
            continue
        stack.append((fn, True))
        stack.extend((x.creator, False) for x in fn.inputs if isinstance(x, Tensor) and x.creator is not None)
    return order


def _trace(model, example_input):
    """Run `model` once in eval mode with the graph recorded; restore its modes. Returns (input, output)."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        x = tensor(example_input.data if isinstance(example_input, Tensor) else example_input,
                   dtype=next(model.parameters()).dtype, device="cpu", requires_grad=True)
        return x, model(x)
    finally:
        for m, mode in modes.items():
            m.training = mode


def export(model, example_input, path, opset=17, input_name="input", output_name="output", dynamic_batch=True,
           overwrite=False, metadata=None):
    """Write `model` as an ONNX graph to `path` (weights as initializers); returns the onnx ModelProto.

    `metadata` ({str: str}) goes into the model's metadata_props. An existing file is replaced only with
    overwrite=True, and then atomically."""
    import onnx
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"ONNX export: {path} exists; pass overwrite=True to replace it")
    if next(model.parameters()).device != "cpu":
        raise ValueError("ONNX export: move the model to the cpu first (model.cpu())")
    x, y = _trace(model, example_input)
    if y.creator is None:
        raise ValueError("ONNX export: the model's output does not depend on its input")
    names = {id(x): input_name}
    names.update({id(p): name for name, p in model.named_parameters()})
    names.update({id(b.data): name for name, b in model.named_buffers() if b is not None})
    graph = _Graph(onnx, names)
    for fn in _functions_in_order(y):
        mapping = MAPPINGS.get(type(fn))
        if mapping is None:
            raise NotImplementedError(f"ONNX export: op {fn.name()} ({type(fn).__module__}.{type(fn).__name__}) "
                                      f"has no ONNX mapping")
        outputs = [ref() for ref in fn.outputs]
        if len(outputs) != 1:
            raise NotImplementedError(f"ONNX export: op {fn.name()} has {len(outputs)} outputs; only single-output "
                                      f"ops map to ONNX here")
        out = output_name if outputs[0] is y else graph.fresh(type(fn).__name__.lower())
        names[id(outputs[0])] = out
        mapping(graph, fn, [x for x in fn.inputs], out)
    batch = "N" if dynamic_batch else x.shape[0]
    element = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
    inputs = [onnx.helper.make_tensor_value_info(input_name, element, [batch, *x.shape[1:]])]
    outputs = [onnx.helper.make_tensor_value_info(output_name, element, [batch, *y.shape[1:]])]
    # parameters that the traced graph never read (unused layers) are left out
    used = {name for node in graph.nodes for name in node.input}
    initializers = _parameter_initializers(onnx, model, used) + graph.initializers
    proto = onnx.helper.make_model(onnx.helper.make_graph(graph.nodes, type(model).__name__, inputs, outputs,
                                                          initializers),
                                   opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="ninx")
    onnx.helper.set_model_props(proto, dict(metadata or {}))
    onnx.checker.check_model(proto, full_check=True)
    with atomic_open(path) as f:
        f.write(proto.SerializeToString())
    return proto


def _parameter_initializers(onnx, model, used):
    values = [(name, p.numpy()) for name, p in model.named_parameters()]
    values += [(name, b.numpy()) for name, b in model.named_buffers() if b is not None]
    return [onnx.numpy_helper.from_array(np.ascontiguousarray(v), name) for name, v in values if name in used]

