"""A guided run of one Network-in-Network block: forward, backward, and the 1×1-convolution fact, printed.

    python -m ninx.demo [--batch 8] [--size 28] [--device cpu]

An mlpconv block is a k×k convolution followed by two 1×1 convolutions, each with a ReLU. A 1×1 convolution
multiplies every pixel's channel vector by the same matrix — a fully connected layer applied at every pixel —
so ninx runs it as one batched GEMM with no im2col; the demo checks that against a per-pixel `linear`.
Global average pooling then turns the last block's channel maps into class scores with no FC head.
"""
import argparse
import time

import numpy as np

import ninx
import ninx.nn.functional as F


def kaiming(shape, fan_in, device):
    """He-normal weights (std √(2/fan_in)) from ninx's generator, so ReLU activations keep their scale."""
    return (ninx.randn(*shape) * float(np.sqrt(2.0 / fan_in))).to(device).requires_grad_()


def mlpconv_layers(in_channels, channels, kernel_size, classes, device):
    """(name, weight, bias, padding) for a k×k conv → 1×1 conv → 1×1 conv to `classes` channels."""
    specs = [("conv%dx%d" % (kernel_size, kernel_size), in_channels, channels, kernel_size, kernel_size // 2),
             ("conv1x1_a", channels, channels, 1, 0),
             ("conv1x1_b", channels, classes, 1, 0)]
    layers = []
    for name, cin, cout, k, pad in specs:
        weight = kaiming((cout, cin, k, k), cin * k * k, device)
        bias = ninx.zeros(cout, requires_grad=True, device=device)
        layers.append((name, weight, bias, pad))
    return layers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--size", type=int, default=28, help="image height and width (default 28)")
    parser.add_argument("--channels", type=int, default=96, help="channels of the block (default 96)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    args = parser.parse_args(argv)
    ninx.manual_seed(0)

    x = ninx.randn(args.batch, 1, args.size, args.size).to(args.device)
    labels = ninx.tensor(np.arange(args.batch) % 10, device=args.device)
    layers = mlpconv_layers(1, args.channels, 5, 10, args.device)
    print(f"input {x.shape} on {x.device}; an mlpconv block of {args.channels} channels, then global average "
          f"pooling to 10 classes\n")
    print(f"{'layer':<12}{'output shape':<22}{'parameters':>12}{'MACs':>16}")

    start = time.perf_counter()
    h = x
    for name, weight, bias, pad in layers:
        h = F.relu(F.conv2d(h, weight, bias, padding=pad)) if name != "conv1x1_b" else \
            F.conv2d(h, weight, bias, padding=pad)
        params = weight.numel() + bias.numel()
        macs = h.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
        print(f"{name:<12}{str(h.shape):<22}{params:>12,}{macs:>16,}")
    logits = F.global_avg_pool2d(h).flatten(1)
    loss = F.cross_entropy(logits, labels)
    forward_s = time.perf_counter() - start
    print(f"{'gap':<12}{str(logits.shape):<22}{0:>12}{h.numel():>16,}")

    start = time.perf_counter()
    loss.backward()
    backward_s = time.perf_counter() - start
    print(f"\nloss {loss.item():.4f} (chance is ln 10 = {np.log(10):.4f}); forward {forward_s * 1e3:.1f} ms, "
          f"backward {backward_s * 1e3:.1f} ms (includes Numba compilation on a first run)")
    for name, weight, bias, _ in layers:
        print(f"  |d loss / d {name}.weight| = {float(np.linalg.norm(weight.grad.numpy())):.4e}")

    # The 1×1 fact: conv2d with a 1×1 kernel equals a linear layer applied to each pixel (NHWC rows).
    _, weight, bias, _ = layers[1]
    features = F.relu(F.conv2d(x, layers[0][1], layers[0][2], padding=2)).detach()
    as_conv = F.conv2d(features, weight, bias)
    n, c, hh, ww = features.shape
    rows = features.permute(0, 2, 3, 1).reshape(n * hh * ww, c)
    as_fc = F.linear(rows, weight.reshape(weight.shape[0], c), bias).reshape(n, hh, ww, -1).permute(0, 3, 1, 2)
    gap = float(np.max(np.abs(as_conv.numpy() - as_fc.numpy())))
    print(f"\n1×1 convolution vs a per-pixel fully connected layer: max |difference| = {gap:.2e} "
          f"over {as_conv.numel():,} outputs")


if __name__ == "__main__":
    main()
