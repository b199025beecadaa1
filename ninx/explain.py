"""`ninx explain TOPIC`: the arithmetic behind the networks after NiN, measured on real ninx modules.

Every number printed comes from a module built here and run through `ninx.summary` (parameters from the
module, MACs from the traced output shapes) or, for `1x1`, from running the module on random input — none is
typed in. Topics:

    1x1                a 1×1 convolution is a fully connected layer applied at every pixel (max difference)
    bottleneck         a k×k conv against a 1×1 reduction followed by it (Inception; default 120.4 M vs 12.4 M)
    gap                a VGG-style fully connected head against global average pooling (NiN, GoogLeNet)
    depthwise          a standard k×k conv against depthwise + pointwise: ratio 1/N + 1/k² (MobileNetV1)
    inverted-residual  MobileNetV2's expand → depthwise → project block, layer by layer
    scaling            EfficientNet's compound scaling: depth α^φ, width β^φ, resolution γ^φ, FLOPs ≈ 2^φ

`--plot FILE.png` draws the table's MACs and parameters (for scaling, the multipliers against φ). cli.py
wires `add_parser` and `run` in as the `explain` command.
"""
from dataclasses import dataclass, field

import numpy as np

from . import nn
from .autograd import no_grad
from .summary import summary
from .tensor import tensor


@dataclass
class Table:
    """A titled table: `columns`, `rows` (lists of values), and notes printed below it."""
    title: str
    columns: list
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def __str__(self):
        cells = [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(self.columns)]
        line = lambda values: "  ".join(v.ljust(w) if i == 0 else v.rjust(w)  # noqa: E731
                                        for i, (v, w) in enumerate(zip(values, widths)))
        rule = "-" * len(line(self.columns))
        return "\n".join([self.title, rule, line(self.columns), rule, *map(line, cells), rule, *self.notes])


def _cell(value):
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cost(module, input_shape):
    """(parameters, MACs) of `module` on one input of `input_shape` (C, H, W), from ninx.summary."""
    s = summary(module, (1,) + tuple(input_shape))
    return s.params, s.macs


def _compare(title, named_modules, input_shape, notes=()):
    """A table of parameters and MACs of each (name, module) on `input_shape`, with MACs relative to the first."""
    table = Table(title, ["module", "parameters", "MACs", "MACs / first"])
    first = None
    for name, module in named_modules:
        params, macs = cost(module, input_shape)
        first = first or macs
        table.rows.append([name, params, macs, macs / first])
    table.notes += list(notes)
    return table


# ---- the topics ---------------------------------------------------------------------------------------

class PerPixelLinear(nn.Module):
    """A fully connected layer applied to the channel vector of every pixel: NCHW → NHWC → linear → NCHW."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def one_by_one(args):
    """conv2d with a 1×1 kernel against linear over the channel vector of every pixel, same weights."""
    c, out, size = args.in_channels, args.out_channels, args.size
    conv, per_pixel = nn.Conv2d(c, out, 1), PerPixelLinear(c, out)
    per_pixel.load_state_dict({"linear.weight": conv.weight.reshape(out, c), "linear.bias": conv.bias})
    x = tensor(np.random.default_rng(args.seed).standard_normal((2, c, size, size)), dtype=np.float32)
    with no_grad():
        difference = np.abs(conv(x).numpy() - per_pixel(x).numpy()).max()
    table = _compare(f"1×1 convolution = a fully connected layer at each pixel ({c} → {out} channels, {size}×{size})",
                     [("conv 1×1", conv), ("linear per pixel", per_pixel)], (c, size, size))
    table.notes.append(f"max |conv − per-pixel linear| on a random input: {difference:.3g}")
    return table


def bottleneck(args):
    c, size, out, k, r = args.in_channels, args.size, args.out_channels, args.kernel, args.reduce
    direct = nn.Conv2d(c, out, k, padding=k // 2)
    reduced = nn.Sequential(nn.Conv2d(c, r, 1), nn.Conv2d(r, out, k, padding=k // 2))
    return _compare(f"{k}×{k} conv {c} → {out} at {size}×{size}, directly and after a 1×1 reduction to {r}",
                    [(f"conv {k}×{k}", direct), (f"conv 1×1 → {r}, conv {k}×{k}", reduced)], (c, size, size),
                    [f"MACs: {size}²·{out}·{c}·{k}² against {size}²·{r}·{c} + {size}²·{out}·{r}·{k}²"])


def vgg16_features():
    """VGG-16's 13 convolutions (3×3, padding 1) and 5 max pools, 224² → 512×7×7."""
    layers, c = [], 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
            c = width
    return nn.Sequential(*layers)


def gap(args):
    c, size, classes = args.channels, args.size, args.num_classes
    fc = nn.Sequential(nn.Flatten(), nn.Linear(c * size * size, 4096), nn.ReLU(), nn.Dropout(),
                       nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, classes))
    gap_linear = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))
    nin_head = nn.Sequential(nn.Conv2d(c, classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    table = _compare(f"classifier heads on {c}×{size}×{size} features, {classes} classes",
                     [("VGG: flatten, fc 4096, fc 4096, fc", fc), ("GoogLeNet: GAP, fc", gap_linear),
                      ("NiN: conv 1×1 to classes, GAP", nin_head)], (c, size, size))
    table.columns.append("weights (float32)")
    for row in table.rows:
        row.append(f"{row[1] * 4 / 2 ** 20:,.1f} MiB")
    features = sum(p.numel() for p in vgg16_features().parameters())
    head = table.rows[0][1]
    table.notes.append(f"VGG-16's 13 convolutions hold {features:,} parameters: its fully connected head holds "
                       f"{head / (head + features):.0%} of the network's {head + features:,}")
    return table


def depthwise(args):
    c, m, k, size = args.channels, args.out_channels, args.kernel, args.size
    standard = nn.Conv2d(c, m, k, padding=k // 2, bias=False)
    separable = nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False), nn.Conv2d(c, m, 1, bias=False))
    table = _compare(f"{k}×{k} conv {c} → {m} at {size}×{size}: standard against depthwise-separable",
                     [(f"conv {k}×{k}", standard), (f"depthwise {k}×{k} + pointwise 1×1", separable)],
                     (c, size, size))
    table.notes.append(f"separable / standard = 1/N + 1/k² = 1/{m} + 1/{k * k} = {1 / m + 1 / k ** 2:.4f}"
                       f" (measured {table.rows[1][3]:.4f})")
    return table


def inverted_residual(args):
    from .models.mobilenetv2 import InvertedResidual
    c, t, size = args.channels, args.expansion, args.size
    block = InvertedResidual(c, c, 1, t)
    s = summary(block, (1, c, size, size))
    table = Table(f"MobileNetV2 inverted residual, {c} channels, expansion {t}, {size}×{size}, stride 1 (residual)",
                  ["layer", "output", "parameters", "MACs"])
    for r in s.rows:
        table.rows.append([f"{r.name} {r.kind}", "×".join(map(str, r.output_shape[1:])), r.params, r.macs])
    table.rows.append(["total", "", s.params, s.macs])
    params, macs = cost(nn.Conv2d(c * t, c * t, 3, padding=1, bias=False), (c * t, size, size))
    table.notes += [f"a standard 3×3 conv at the expanded width {c * t} would cost {macs:,} MACs "
                    f"({macs / s.macs:.1f}× the block) and {params:,} parameters",
                    f"the expanded {c * t}-channel tensors live only inside the block; between blocks the network "
                    f"carries {c} channels"]
    return table


def scaling(args):
    from .models.efficientnet import ALPHA, BETA, GAMMA, B0_STAGES, EfficientNet, MBConvConfig, compound_scaling
    table = Table(f"EfficientNet compound scaling: α = {ALPHA}, β = {BETA}, γ = {GAMMA}, α·β²·γ² = "
                  f"{ALPHA * BETA ** 2 * GAMMA ** 2:.3f}",
                  ["φ", "depth α^φ", "width β^φ", "resolution γ^φ", "size", "FLOPs (αβ²γ²)^φ", "parameters", "MACs",
                   "MACs / φ=0"])
    base = None
    for phi in range(8):
        depth, width, resolution, flops = compound_scaling(phi)
        side = int(round(224 * resolution))
        row = [phi, depth, width, resolution, f"{side}²", flops]
        if phi <= args.phi:
            stages = [MBConvConfig.scaled(*s, width=width, depth=depth) for s in B0_STAGES]
            params, macs = cost(EfficientNet(stages, dropout=0.2), (3, side, side))
            base = base or macs
            row += [params, macs, macs / base]
        else:
            row += ["", "", ""]
        table.rows.append(row)
    table.notes.append(f"networks built and measured for φ ≤ {args.phi} (--phi); the released B1…B7 round the "
                       "multipliers (ninx/models/efficientnet.py VARIANTS)")
    return table


TOPICS = {"1x1": one_by_one, "bottleneck": bottleneck, "gap": gap, "depthwise": depthwise,
          "inverted-residual": inverted_residual, "scaling": scaling}


def plot(table, path):
    """Bars of MACs and parameters per row, or for `scaling` the multipliers and FLOPs against φ."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .atomic import atomic_open
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    if table.columns[0] == "φ":
        axes = figure.subplots()
        phis = [row[0] for row in table.rows]
        for i, label in ((1, "depth"), (2, "width"), (3, "resolution"), (5, "FLOPs factor")):
            axes.plot(phis, [row[i] for row in table.rows], marker="o", label=label)
        axes.set_yscale("log")
        axes.set_xlabel("φ")
        axes.legend()
    else:
        names = [str(row[0]) for row in table.rows]
        for axes, column in zip(figure.subplots(1, 2), ("MACs", "parameters")):
            index = table.columns.index(column)
            axes.barh(names, [row[index] or 0 for row in table.rows])
            axes.set_xlabel(column)
            axes.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
            axes.invert_yaxis()
    figure.suptitle(table.title, fontsize=9)
    with atomic_open(path) as f:
        figure.savefig(f, format="png", dpi=100)


def add_parser(commands):
    """The `explain` command and its topics, on an argparse sub-parsers object."""
    p = commands.add_parser("explain", help="the arithmetic behind GoogLeNet, MobileNet and EfficientNet",
                            description="Tables computed by ninx's summary machinery on real modules.")
    topics = p.add_subparsers(dest="topic", metavar="TOPIC", required=True)

    def topic(name, help):
        t = topics.add_parser(name, help=help, description=help)
        t.add_argument("--plot", metavar="FILE.png", help="also draw the table")
        return t

    t = topic("1x1", "a 1×1 convolution is a per-pixel fully connected layer")
    t.add_argument("--in-channels", type=int, default=192)
    t.add_argument("--out-channels", type=int, default=64)
    t.add_argument("--size", type=int, default=8)
    t.add_argument("--seed", type=int, default=0)
    t = topic("bottleneck", "a k×k conv against a 1×1 reduction then the k×k conv")
    t.add_argument("--in-channels", type=int, default=192)
    t.add_argument("--size", type=int, default=28)
    t.add_argument("--out-channels", type=int, default=32)
    t.add_argument("--kernel", type=int, default=5)
    t.add_argument("--reduce", type=int, default=16)
    t = topic("gap", "a fully connected head against global average pooling")
    t.add_argument("--channels", type=int, default=512)
    t.add_argument("--size", type=int, default=7)
    t.add_argument("--num-classes", type=int, default=1000)
    t = topic("depthwise", "a standard conv against a depthwise-separable one")
    t.add_argument("--channels", type=int, default=32)
    t.add_argument("--out-channels", type=int, default=64)
    t.add_argument("--kernel", type=int, default=3)
    t.add_argument("--size", type=int, default=56)
    t = topic("inverted-residual", "MobileNetV2's block, layer by layer")
    t.add_argument("--channels", type=int, default=24)
    t.add_argument("--expansion", type=int, default=6)
    t.add_argument("--size", type=int, default=56)
    t = topic("scaling", "EfficientNet's compound scaling for φ = 0…7")
    t.add_argument("--phi", type=int, default=1, help="build and measure the scaled networks up to this φ (default "
                                                      "1; each step about doubles the time)")
    return p


def run(args):
    """Print the table of `args.topic` (and draw it with --plot); returns the Table."""
    table = TOPICS[args.topic](args)
    print(table)
    if args.plot:
        plot(table, args.plot)
        print(f"plot: {args.plot}")
    return table
