"""The `ninx` command (also `python -m ninx`): train, evaluate a checkpoint, summarise a model, benchmark."""
import argparse
import os
import re
import shlex
import sys

from . import distributed, explain
from .data import DATASETS
from .models import MODELS

EXAMPLES = """\
examples:
  ninx train                                  train a small NiN on the bundled 8×8 digits (about 15 s)
  ninx train --data fashion-mnist --out runs/fashion
                                              Fashion-MNIST by its recipe (nin-28, 13 epochs, about 13 min)
  ninx train --out runs/fashion --resume      continue runs/fashion from its last checkpoint
  ninx eval --checkpoint runs/fashion/checkpoint.npz
  ninx export --checkpoint runs/fashion/model.safetensors --out fashion.onnx
  mpiexec -n 2 ninx train --data fashion-mnist  data-parallel on two processes (pip install 'ninx[mpi]')
  ninx summary --model mobilenet_v2 --input 1,3,224,224
  ninx explain bottleneck                     the 1×1 reduction's arithmetic, on real modules
  ninx bench --quick                          the speed suite, small and fast (see benchmarks/)

Run `ninx COMMAND --help` for the options of each command.
"""

TRAIN_HELP = """\
Train a model and write to the run folder (--out): checkpoint.npz and model.safetensors (the weights alone)
after every epoch, metrics.jsonl (one line per epoch: losses, accuracies, images/s, seconds) and curves.png
(the learning curves). The first line printed names the run folder and the files read, the second the
recipe's choices; on a terminal a progress bar goes to stderr, elsewhere one line per epoch; the last line
printed is `test accuracy: 0.XXXX`. Under `mpiexec -n K` the K processes train data-parallel (--batch-size is
per process) and only the first writes and prints.

Options not given come from the data set's recipe:
{recipes}
A run folder that holds a run is never overwritten: give --resume to continue it or --overwrite to replace
it. Without --out, each run gets a folder of its own: runs/DATA-MODEL, runs/DATA-MODEL-2, … Only one process
at a time can write to a run folder. Ctrl-C stops after keeping the last finished epoch and prints the
--resume command (exit status 130); a loss that becomes NaN or infinite stops the run with an error.

With --resume, training continues from the run folder's checkpoint with the options it was started with;
options that would change the run (data set, model, schedule, hyper-parameters, seed) are refused, and only
--device and --data-dir may differ. A resumed run ends with the same weights and metrics as one that was
never interrupted.
"""


def number(key):
    """An argparse type for numeric option `key`: the text parsed, then checked by training.check_number."""
    from .training import NUMBERS, check_number
    kind = NUMBERS[key][0]

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return check_number(key, value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def device(text):
    """An argparse type for --device: cpu, cuda or cuda:N (whether a GPU is there is checked when it is used)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    return text


def add_train_parser(commands):
    from .recipes import RECIPES, describe
    from .training import DEFAULTS
    recipes = "\n".join(f"  {describe(data, recipe, ())}" for data, recipe in RECIPES.items())
    p = commands.add_parser("train", help="train a model on a data set", description=TRAIN_HELP.format(recipes=recipes),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    datasets = "; ".join(f"{name}: {info.description}" for name, info in DATASETS.items())
    recipe = "(default: the data set's recipe)"
    p.add_argument("--model", choices=list(MODELS), help=f"which model {recipe}; `ninx summary --model NAME` shows "
                                                         f"its layers")
    p.add_argument("--data", choices=list(DATASETS), help=f"data set (default {DEFAULTS['data']}). {datasets}")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the data set's files (MNIST-style IDX files, "
                                      "cifar-10-batches-py, digits.csv.gz), read from there and nowhere else; "
                                      "without it they are looked up or downloaded")
    p.add_argument("--epochs", type=number("epochs"), metavar="N", help=f"passes over the training set {recipe}")
    p.add_argument("--batch-size", type=number("batch_size"), metavar="N", help=f"images per step {recipe}")
    p.add_argument("--lr", type=number("lr"), help=f"peak learning rate, annealed to 0 on a cosine {recipe}")
    p.add_argument("--optimizer", choices=("sgd", "adam"), help=f"sgd (momentum 0.9) or adam {recipe}")
    p.add_argument("--weight-decay", type=number("weight_decay"), metavar="WD", help=f"L2 penalty {recipe}")
    p.add_argument("--upscale", type=number("upscale"), metavar="K",
                   help="enlarge images by this integer factor (1–16), to feed small images to a model built for "
                        f"bigger ones (default {DEFAULTS['upscale']})")
    p.add_argument("--seed", type=number("seed"), metavar="S", help=f"seed for initialisation, shuffling and "
                                                                   f"augmentation (default {DEFAULTS['seed']})")
    p.add_argument("--device", type=device, help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--limit-batches", type=number("limit_batches"), metavar="K",
                   help="train and test on only the first K batches of each epoch (quick smoke runs)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: a new runs/DATA-MODEL[-N])")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    again.add_argument("--overwrite", action="store_true", help="replace the run in --out (its files are replaced "
                                                               "when the new run's first epoch is saved)")


def add_eval_parser(commands):
    p = commands.add_parser("eval", help="accuracy and confusion matrix of a saved checkpoint",
                            description="Evaluate a checkpoint on a test split: accuracy and confusion matrix.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or model.safetensors written by `ninx train`")
    p.add_argument("--data", choices=list(DATASETS), help="data set (default: the one it was trained on)")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the data set's files")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--batch-size", type=number("batch_size"), metavar="N",
                   help="images per batch (default: the training batch size)")


def add_summary_parser(commands):
    p = commands.add_parser("summary", help="layer-by-layer output shapes, parameters and costs of a model",
                            description="Print each layer's output shape and parameter count for one input shape.")
    p.add_argument("--model", default="nin", choices=list(MODELS), help="which model (default nin, d2l's NiN)")
    p.add_argument("--input", help="input shape N,C,H,W (default: one image of the size the model is designed "
                                   "for, e.g. 1,1,224,224 for nin)")
    p.add_argument("--num-classes", type=number("num_classes"), default=10,
                   help="classes of the model's output (default 10)")


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
    add_export_parser(commands)
    explain.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        parser.exit(2)
    return args


def given_options(args):
    """The training options given on the command line, as configuration keys and values."""
    from .training import CONFIG_KEYS
    return {key: getattr(args, key) for key in CONFIG_KEYS if getattr(args, key) is not None}


def new_config(given):
    """The configuration of a new run: the options given, else the data set's recipe, else the defaults."""
    from .recipes import RECIPES
    from .training import DEFAULTS
    return {**DEFAULTS, **RECIPES[given.get("data", DEFAULTS["data"])], **given}


def resumed_config(stored, given, out):
    """The stored configuration of run `out` with the options that a resume may change (device, data folder);
    a ValueError for any other option given with a value other than the stored one."""
    for key, value in given.items():
        if key not in ("device", "data_dir") and value != stored[key]:
            flag = "--" + key.replace("_", "-")
            why = " and its learning rate anneals to 0 there" if key == "epochs" else ""
            raise ValueError(f"{out} was started with {flag} {stored[key]}{why}: --resume cannot change {flag} "
                             f"(start a new run with another --out for other settings)")
    return {**stored, **given}


def claim_run(args, config):
    """(run folder, its lock file) for a new run: --out, refused if it holds a run unless --overwrite is
    given, or else a fresh runs/DATA-MODEL[-N]."""
    from . import runs
    if args.out is None:
        return runs.fresh_default(os.path.join("runs", f"{config['data']}-{config['model']}"))
    lock = runs.claim(args.out)
    if runs.holds_run(args.out) and not args.overwrite:
        lock.close()
        raise FileExistsError(f"{args.out} holds a run already: continue it with --resume, replace it with "
                              f"--overwrite, or choose another --out")
    return args.out, lock


def resume(out, given, say=print):
    """(configuration, data files, checkpoint) to continue run `out`, or None when it is finished; `say`
    prints what it does (a rank other than 0 passes one that prints nothing)."""
    from .data import locate_dataset
    from .runs import CHECKPOINT
    from .training import load_run
    path = os.path.join(out, CHECKPOINT)
    state = load_run(path)
    config = resumed_config(state["meta"]["config"], given, out)
    done = state["meta"]["history"]
    if len(done) >= config["epochs"]:
        say(f"{out} is finished: all {config['epochs']} epochs are done, nothing to resume (start a new run "
            f"with another --out, or replace this one with --overwrite)")
        say(f"test accuracy: {done[-1]['test_acc']:.4f}")
        return None
    files = locate_dataset(config["data"], config["data_dir"])
    say(f"run folder {out}: resuming {path}, reading {', '.join(files)}")
    return config, files, state


def run_train(args):
    """`ninx train`; returns the exit status (130 after Ctrl-C). Everything that can be checked — options,
    data files, the run folder — is checked before the first epoch starts. Under `mpiexec -n K` the K ranks
    train data-parallel; only rank 0 claims and writes the run folder and prints."""
    from . import distributed, runs
    from .data import locate_dataset
    from .recipes import describe
    from .training import Interrupted, fit
    distributed.init()
    if distributed.rank() != 0:
        return run_train_rank(args)
    given = given_options(args)
    if args.resume:
        if args.out is None:
            raise ValueError("--resume needs --out, the run folder to continue")
        out, lock = args.out, runs.claim(args.out)
    else:
        config = new_config(given)
        files = locate_dataset(config["data"], config["data_dir"])
        out, lock = claim_run(args, config)
    if distributed.world_size() > 1:
        print(f"data-parallel on {distributed.world_size()} processes: --batch-size is per process")
    with lock:  # closing the lock file lets the next process in
        if args.resume:
            resumed = resume(out, given)
            if resumed is None:
                return 0
            config, files, state = resumed
        else:
            print(f"run folder {out}: reading {', '.join(files)}")
            print(describe(config["data"], config, given))
            state = None
        try:
            history = fit(config, out, files, state)
        except Interrupted as stop:
            if stop.epochs:
                print(f"ninx train: interrupted; {out} keeps epoch {stop.epochs}. Continue with: ninx train --out "
                      f"{shlex.quote(out)} --resume", file=sys.stderr)
            else:
                print(f"ninx train: interrupted before this run saved an epoch; {out} is as it was", file=sys.stderr)
            return 130
    print(f"test accuracy: {history[-1]['test_acc']:.4f}")
    return 0


def run_train_rank(args):
    """A rank other than 0 of a data-parallel `ninx train`: the same configuration, and no output at all."""
    from .data import locate_dataset
    from .training import fit
    given = given_options(args)
    if args.resume:
        resumed = resume(args.out, given, say=lambda *text: None)
        if resumed is None:
            return 0
        config, files, state = resumed
    else:
        config, state = new_config(given), None
        files = locate_dataset(config["data"], config["data_dir"])
    fit(config, args.out, files, state, log=lambda line: None)
    return 0


def add_export_parser(commands):
    p = commands.add_parser("export", help="write a trained model as ONNX, checked by onnx.checker",
                            description="Export a run's model (checkpoint.npz or model.safetensors) to ONNX, with a "
                                        "dynamic batch size; its input is normalised as in training (mean and "
                                        "std are in the file's metadata).")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or model.safetensors written by `ninx train`")
    p.add_argument("--model", choices=list(MODELS), help="the architecture (default: the one the run trained)")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=number("opset"), default=17, help="ONNX opset (default 17)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run_export(args):
    import json

    import numpy as np

    from . import onnx
    from .training import load_weights, load_weights_file, make_model
    if os.path.exists(args.out) and not args.overwrite:
        raise FileExistsError(f"{args.out} exists: replace it with --overwrite, or choose another --out")
    weights, config, normalize = load_weights_file(args.checkpoint)
    if args.model and args.model != config["model"]:
        raise ValueError(f"{args.checkpoint} holds a {config['model']!r} model, not {args.model!r}")
    model = make_model(dict(config, device="cpu"))
    load_weights(model, weights, args.checkpoint, config["model"])
    info = DATASETS[config["data"]]
    side = info.size * config["upscale"]  # the images the model trained on
    shape = (1, info.channels, side, side)
    proto = onnx.export(model, np.zeros(shape, np.float32), args.out, opset=args.opset, overwrite=args.overwrite,
                        metadata={"ninx.model": config["model"], "ninx.normalize": json.dumps(normalize)})
    print(f"wrote {args.out}: {config['model']} for input (N, {', '.join(map(str, shape[1:]))}), "
          f"{len(proto.graph.node)} nodes, opset {args.opset}")


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
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"--input must be N,C,H,W (4 positive numbers), got {args.input!r}")
    model = get_model(args.model, num_classes=args.num_classes, in_channels=shape[1])
    print(summary(model, shape))


def user_errors():
    """Errors that mean a wrong option, a missing file or a missing GPU: shown as one line, not a traceback."""
    from ninx_kernels.cuda import CudaUnavailable
    return OSError, ValueError, CudaUnavailable


def main(argv=None):
    """Entry point of the `ninx` command; returns the exit status (1 for a user error, 130 after Ctrl-C)."""
    args = parse_args(argv)
    try:
        status = {"train": run_train, "eval": run_eval, "summary": run_summary, "bench": run_bench,
                  "export": run_export, "explain": explain.run}[args.command](args)
    except user_errors() as e:
        print(f"ninx {args.command}: error: {e}", file=sys.stderr)
        distributed.abort(1)  # under mpiexec the other ranks would wait for this one for ever
        return 1
    except KeyboardInterrupt:
        print(f"ninx {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0
