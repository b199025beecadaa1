"""The learning-curves figure of a training run: loss and accuracy per epoch, train and test, as a PNG."""
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .atomic import atomic_open


def plot_curves(history, path, title=""):
    """Write `history` (a list of metrics.jsonl rows) to `path` as a two-panel PNG."""
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, metric, label in zip(figure.subplots(1, 2), ("loss", "acc"), ("cross-entropy loss", "accuracy")):
        for split in ("train", "test"):
            axes.plot(epochs, [row[f"{split}_{metric}"] for row in history], marker="o", markersize=3, label=split)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    with atomic_open(path) as f:
        figure.savefig(f, format="png", dpi=100)
