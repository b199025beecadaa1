"""The roofline plot: GFLOP/s against arithmetic intensity, under the measured peak and bandwidth."""
from .report import attainable

MARKERS = {"ninx": "o", "torch": "^", "numpy": "s"}


def _family(row):
    """What a point's colour stands for: 'gemm float64', 'conv 1×1 forward', 'maxpool backward', …"""
    if row["section"] == "gemm":
        return f"gemm {row['dtype']}"
    words = row["name"].split()
    kind = "conv 1×1" if words[:2] == ["conv", "1×1"] else words[0]
    return f"{kind} {row['pass']}"


def roofline_png(results, path):
    """GFLOP/s against FLOP/byte on log axes: the roof per dtype, each ninx kernel and its reference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    roof, rows = results["roof"], [r for r in results["rows"] if r["intensity"]]
    fig, ax = plt.subplots(figsize=(11, 6))
    intensities = [r["intensity"] for r in rows] or [1.0]
    x = np.logspace(np.log10(min(intensities + [0.05]) / 2), np.log10(max(intensities + [100]) * 2), 200)
    for dtype, style in (("float32", "-"), ("float64", "--")):
        ax.plot(x, [attainable(roof, dtype, i) for i in x], "k" + style, lw=1.5,
                label=f"roof {dtype}: {roof['peak'][dtype]['gflops']:.0f} GFLOP/s, "
                      f"{roof['copy']['gbytes_per_s']:.0f} GB/s")
    colors = {}
    palette = plt.get_cmap("tab20").colors
    for row in rows:
        color = colors.setdefault(_family(row), palette[len(colors) % len(palette)])
        points = [(e.get("name", "ninx"), e["gflops"]) for e in (row["ninx"], row["reference"]) if e]
        if len(points) == 2:
            ax.plot([row["intensity"]] * 2, [g for _, g in points], color=color, lw=0.6, alpha=0.5)
        for impl, gflops in points:
            ax.scatter(row["intensity"], gflops, marker=MARKERS.get(impl, "x"), color=color,
                       facecolors=color if impl == "ninx" else "none", s=30)
    for key, color in colors.items():
        ax.scatter([], [], color=color, marker="o", label=key)
    for impl, marker in MARKERS.items():
        ax.scatter([], [], color="gray", marker=marker, facecolors="gray" if impl == "ninx" else "none",
                   label=impl)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte of compulsory traffic)")
    ax.set_ylabel("GFLOP/s")
    m = results["machine"]
    ax.set_title(f"ninx roofline — {m['cpu_model']} ({m['microarchitecture']}), target "
                 f"{m['gemm']['target']['cpu_name']}, {results['config']['threads']} threads, {m['date'][:10]}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
