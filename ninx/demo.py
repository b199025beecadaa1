"""A guided run of one Network-in-Network block: forward, backward, and the 1×1-convolution fact, printed.

    python -m ninx.demo [--batch 8] [--size 28] [--device cpu]

An mlpconv block is a k×k convolution followed by two 1×1 convolutions, each with a ReLU. A 1×1 convolution
multiplies every pixel's channel vector by the same matrix — a fully connected layer applied at every pixel —
so ninx runs it as one batched GEMM with no im2col; the demo checks that against a per-pixel `linear`.
Global average pooling then turns the last block's channel maps into class scores with no FC head.
The block is `ninx.models.mlpconv`, initialised by `ninx.models.initialise`, and its table is `ninx.summary`.
"""
import argparse
import time

import numpy as np

import ninx
import ninx.nn.functional as F
from ninx import nn
from ninx.models import initialise, mlpconv
from ninx.summary import summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--size", type=int, default=28, help="image height and width (default 28)")
    parser.add_argument("--channels", type=int, default=96, help="channels of the block (default 96)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    args = parser.parse_args(argv)
    ninx.manual_seed(0)

    # a 5×5 conv → 1×1 conv → 1×1 conv to 10 class maps, He-normal initialised, then global average pooling
    block = initialise(mlpconv(1, (args.channels, args.channels, 10), 5, padding=2, final_relu=False),
                       "kaiming_normal")
    model = nn.Sequential(block, nn.GlobalAvgPool2d(), nn.Flatten()).to(args.device)
    x = ninx.randn(args.batch, 1, args.size, args.size).to(args.device)
    labels = ninx.tensor(np.arange(args.batch) % 10, device=args.device)
    print(f"input {x.shape} on {x.device}; an mlpconv block of {args.channels} channels, then global average "
          f"pooling to 10 classes\n")
    print(summary(model, x.shape), "\n")

    start = time.perf_counter()
    loss = F.cross_entropy(model(x), labels)
    forward_s = time.perf_counter() - start
    start = time.perf_counter()
    loss.backward()
    backward_s = time.perf_counter() - start
    print(f"loss {loss.item():.4f} (chance is ln 10 = {np.log(10):.4f}); forward {forward_s * 1e3:.1f} ms, "
          f"backward {backward_s * 1e3:.1f} ms (includes Numba compilation on a first run)")
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            print(f"  |d loss / d {name}| = {float(np.linalg.norm(p.grad.numpy())):.4e}")

    # The 1×1 fact: conv2d with a 1×1 kernel equals a linear layer applied to each pixel (NHWC rows).
    pointwise = block[2]
    with ninx.no_grad():
        features = block[1](block[0](x))
        as_conv = pointwise(features)
        n, c, hh, ww = features.shape
        rows = features.permute(0, 2, 3, 1).reshape(n * hh * ww, c)
        as_fc = F.linear(rows, pointwise.weight.reshape(pointwise.out_channels, c), pointwise.bias)
        as_fc = as_fc.reshape(n, hh, ww, -1).permute(0, 3, 1, 2)
    gap = float(np.max(np.abs(as_conv.numpy() - as_fc.numpy())))
    print(f"\n1×1 convolution vs a per-pixel fully connected layer: max |difference| = {gap:.2e} "
          f"over {as_conv.numel():,} outputs")


if __name__ == "__main__":
    main()
