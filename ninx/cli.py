"""The `ninx` command (also `python -m ninx`): train, evaluate a checkpoint, summarise a model, benchmark."""
import argparse
import os
import sys

from .data import DATASETS
from .models import MODELS

EXAMPLES = """\
examples:
  ninx train                                  train a small NiN on the bundled 8×8 digits (about 15 s)
  ninx train --data fashion-mnist --model nin-small --epochs 10 --out runs/fashion
  ninx train --out runs/fashion --resume      continue runs/fashion from its last checkpoint
  ninx eval --checkpoint runs/fashion/checkpoint.npz
  ninx summary --model nin --input 1,1,224,224
  ninx bench --quick                          the speed suite, small and fast (see benchmarks/)

Run `ninx COMMAND --help` for the options of each command.
"""

TRAIN_HELP = """\
Train a model and write to the run folder (--out): checkpoint.npz after every epoch, metrics.jsonl (one line
per epoch: losses, accuracies, images/s, seconds) and curves.png (the learning curves). A progress bar goes
to stderr; the last line printed is `test accuracy: 0.XXXX`.

With --resume, training continues from the run folder's checkpoint with the options it was started with
(an option given again overrides the saved one, except --epochs). A resumed run ends with the same weights
and metrics as one that was never interrupted.
"""


def add_train_parser(commands):
    from .training import DEFAULTS
    p = commands.add_parser("train", help="train a model on a data set", description=TRAIN_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    datasets = "; ".join(f"{name}: {info.description}" for name, info in DATASETS.items())
    p.add_argument("--model", choices=list(MODELS), help=f"which NiN (default {DEFAULTS['model']}; "
                                                         f"`ninx summary --model NAME` shows its layers)")
    p.add_argument("--data", choices=list(DATASETS), help=f"data set (default {DEFAULTS['data']}). {datasets}")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the data set's files (MNIST-style IDX files or "
                                      "cifar-10-batches-py); otherwise they are looked up or downloaded")
    p.add_argument("--epochs", type=int, metavar="N", help=f"passes over the training set (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=int, metavar="N", help=f"images per step (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=float, help=f"peak learning rate, annealed to 0 on a cosine (default {DEFAULTS['lr']})")
    p.add_argument("--optimizer", choices=("sgd", "adam"), help=f"sgd (momentum 0.9) or adam "
                                                                 f"(default {DEFAULTS['optimizer']})")
    p.add_argument("--weight-decay", type=float, metavar="WD", help=f"L2 penalty (default {DEFAULTS['weight_decay']})")
    p.add_argument("--upscale", type=int, metavar="K", help="enlarge images by this integer factor, to feed small images to a "
                                               "model built for bigger ones (default 1)")
    p.add_argument("--seed", type=int, metavar="S", help=f"seed for initialisation, shuffling and augmentation "
                                            f"(default {DEFAULTS['seed']})")
    p.add_argument("--device", help="cpu or cuda (default cpu)")
    p.add_argument("--limit-batches", type=int, metavar="K",
                   help="train and test on only the first K batches of each epoch (quick smoke runs)")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/DATA-MODEL)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")


def add_eval_parser(commands):
    p = commands.add_parser("eval", help="accuracy and confusion matrix of a saved checkpoint",
                            description="Evaluate a checkpoint on a test split: accuracy and confusion matrix.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz written by `ninx train`")
    p.add_argument("--data", choices=list(DATASETS), help="data set (default: the one it was trained on)")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the data set's files")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per batch (default: the training batch size)")


def add_summary_parser(commands):
    p = commands.add_parser("summary", help="layer-by-layer output shapes, parameters and costs of a model",
                            description="Print each layer's output shape and parameter count for one input shape.")
    p.add_argument("--model", default="nin", choices=list(MODELS), help="which NiN (default nin, d2l's)")
    p.add_argument("--input", help="input shape N,C,H,W (default: one image of the size the model is designed "
                                   "for, e.g. 1,1,224,224 for nin)")
    p.add_argument("--num-classes", type=int, default=10, help="classes of the model's output (default 10)")


def add_bench_parser(commands):
    # every argument after `bench` goes to the suite's own parser (`ninx bench --help` shows its options): this
    # subparser's only prefix character is NUL, so argparse reads none of them as an option of its own
    p = commands.add_parser("bench", help="the CPU speed suite: GEMM, the small NiN's ops and training step",
                            add_help=False, prefix_chars="\0")
    p.add_argument("bench_args", nargs=argparse.REMAINDER)


def run_bench(args):
    from ninx_benchmarks.__main__ import main as bench
    bench(args.bench_args, prog="ninx bench")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="ninx", description="ninx: a deep-learning framework written from scratch. Train Network-in-Network "
                                 "models, evaluate them, and inspect their layers.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_parser(commands)
    add_eval_parser(commands)
    add_summary_parser(commands)
    add_bench_parser(commands)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        parser.exit(2)
    return args


def train_config(args, stored=None):
    """Each option from the command line if given, else from the resumed run, else the default."""
    from .training import DEFAULTS
    given = {key: getattr(args, key) for key in DEFAULTS if getattr(args, key) is not None}
    return {**DEFAULTS, **(stored or {}), **given}


def run_train(args):
    from . import checkpoint
    from .training import CHECKPOINT, fit
    config, state = train_config(args), None
    out = args.out or os.path.join("runs", f"{config['data']}-{config['model']}")
    if args.resume:
        state = checkpoint.load(os.path.join(out, CHECKPOINT))
        planned = state["meta"]["config"]["epochs"]
        if args.epochs not in (None, planned):
            raise ValueError(f"{out} was started for {planned} epochs and its learning rate anneals to 0 there: "
                             f"--resume cannot change --epochs (start a new run for a longer schedule)")
        config = train_config(args, state["meta"]["config"])
    history = fit(config, out, state)
    print(f"test accuracy: {history[-1]['test_acc']:.4f}")


def run_eval(args):
    from .training import evaluate_checkpoint
    accuracy, confusion = evaluate_checkpoint(args.checkpoint, args.data, args.data_dir, args.device,
                                              args.batch_size)
    width = max(5, len(str(confusion.max())) + 1)
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(" " * 6 + "".join(f"{c:>{width}}" for c in range(len(confusion))))
    for c, row in enumerate(confusion):
        print(f"{c:>6}" + "".join(f"{v:>{width}}" for v in row))
    print(f"test accuracy: {accuracy:.4f}")


def run_summary(args):
    from .models import get_model, input_shape
    from .summary import summary
    try:
        shape = tuple(int(s) for s in args.input.split(",")) if args.input else (1,) + input_shape(args.model)
    except ValueError:
        raise ValueError(f"--input must be comma-separated integers N,C,H,W, got {args.input!r}") from None
    if len(shape) != 4:
        raise ValueError(f"--input must be N,C,H,W (4 numbers), got {args.input!r}")
    model = get_model(args.model, num_classes=args.num_classes, in_channels=shape[1])
    print(summary(model, shape))


def user_errors():
    """Errors that mean a wrong option, a missing file or a missing GPU: shown as one line, not a traceback."""
    from ninx_kernels.cuda import CudaUnavailable
    return OSError, ValueError, CudaUnavailable


def main(argv=None):
    """Entry point of the `ninx` command; returns the exit status."""
    args = parse_args(argv)
    try:
        {"train": run_train, "eval": run_eval, "summary": run_summary, "bench": run_bench}[args.command](args)
    except user_errors() as e:
        print(f"ninx {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0
