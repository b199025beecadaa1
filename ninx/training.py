"""Train and evaluate a classifier on a named data set, checkpointing every epoch so that an interrupted run,
resumed, ends bit-identical to one that was never interrupted.

A run folder holds `checkpoint.npz` (model, optimizer, scheduler, ninx's RNG state, the data-order RNG
state, the epoch, the configuration and the metrics so far), `metrics.jsonl` (one line per epoch) and
`curves.png` (the learning curves); ninx.runs keeps two processes out of one folder.

A configuration holds the recipe's keys (ninx.recipes: model, epochs, batch_size, optimizer, lr,
weight_decay) and DEFAULTS' keys. Every number in it is checked by `check_number`, the command line's and a
checkpoint's alike, so a bad value is refused before any computing starts.
"""
import itertools
import json
import math
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from . import checkpoint, distributed, serialization
from .atomic import atomic_open
from .autograd import no_grad
from .curves import plot_curves
from .data import DATASETS, DataLoader, locate_dataset, read_dataset
from .data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, Upscale
from .models import MODELS, get_model
from .nn.functional import cross_entropy
from .optim import SGD, Adam
from .optim.lr_scheduler import CosineAnnealingLR
from .random import get_state, manual_seed, set_state
from .recipes import KEYS as RECIPE_KEYS
from .runs import CHECKPOINT, CURVES, METRICS, WEIGHTS, deferred_interrupt

DATA_STREAM = 1  # the data-order generator is seeded with (DATA_STREAM, seed), apart from ninx's generator

# The options that are not part of a data set's recipe, and their defaults (`ninx train` alone trains digits).
DEFAULTS = {"data": "digits", "seed": 0, "upscale": 1, "device": "cpu", "data_dir": None, "limit_batches": None}
CONFIG_KEYS = RECIPE_KEYS + tuple(DEFAULTS)

# Each numeric option: its type, smallest and largest allowed value, and whether the smallest is excluded.
NUMBERS = {"epochs": (int, 1, None, False), "batch_size": (int, 1, None, False),
           "limit_batches": (int, 1, None, False), "seed": (int, 0, None, False),
           "upscale": (int, 1, 16, False),  # 16× already makes 32×32 images 512×512
           "lr": (float, 0.0, None, True), "weight_decay": (float, 0.0, None, False),
           "num_classes": (int, 1, None, False),  # `ninx summary`'s
           "opset": (int, 13, None, False)}  # `ninx export`'s: the mapped ops need opset 13 or later
OPTIMIZERS = ("sgd", "adam")


def check_number(key, value):
    """`value` when it is a valid value of numeric option `key`, else a ValueError saying what is allowed."""
    kind, low, high, open_low = NUMBERS[key]
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    is_number = is_int or (kind is float and isinstance(value, (float, np.floating)) and math.isfinite(value))
    if (not is_number or value < low or (open_low and value == low)
            or (high is not None and value > high)):
        what = "an integer" if kind is int else "a finite number"
        bound = f"> {low:g}" if open_low else f"≥ {low:g}" if high is None else f"from {low:g} to {high:g}"
        raise ValueError(f"must be {what} {bound}, got {value!r}")
    return kind(value)


def check_config(config, source):
    """A ValueError naming `source` unless `config` is a complete, valid training configuration."""
    if not isinstance(config, dict) or set(config) != set(CONFIG_KEYS):
        keys = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{source}: the configuration must have the keys {', '.join(CONFIG_KEYS)}, got {keys}")
    for key, allowed in (("model", MODELS), ("data", DATASETS), ("optimizer", OPTIMIZERS)):
        if config[key] not in allowed:
            raise ValueError(f"{source}: {key} must be one of {', '.join(allowed)}, got {config[key]!r}")
    for key in set(NUMBERS) & set(CONFIG_KEYS):
        if key != "limit_batches" or config[key] is not None:
            try:
                check_number(key, config[key])
            except ValueError as e:
                raise ValueError(f"{source}: {key} {e}") from None
    if not isinstance(config["device"], str) or not (config["data_dir"] is None or isinstance(config["data_dir"], str)):
        raise ValueError(f"{source}: device and data_dir must be strings, got {config['device']!r}, "
                         f"{config['data_dir']!r}")


def channel_stats(images):
    """Per-channel mean and standard deviation of (N, C, H, W) images, as lists of floats."""
    return images.mean(axis=(0, 2, 3)).tolist(), images.std(axis=(0, 2, 3)).tolist()


def make_transform(config, normalize, train):
    """Normalise, upscale, and (for CIFAR-10 training batches) crop and flip at random."""
    steps = [Normalize(*normalize), Upscale(config["upscale"])]
    if train and config["data"] == "cifar10":
        size = DATASETS["cifar10"].size * config["upscale"]
        steps += [RandomCrop(size, padding=size // 8), RandomHorizontalFlip()]
    return Compose(steps)


def make_model(config):
    info = DATASETS[config["data"]]
    return get_model(config["model"], num_classes=info.classes, in_channels=info.channels).to(config["device"])


def make_optimizer(config, model):
    """SGD with momentum 0.9, or Adam; either one with the learning rate annealed to zero on a cosine."""
    if config["optimizer"] == "sgd":
        optimizer = SGD(model.parameters(), lr=config["lr"], momentum=0.9, weight_decay=config["weight_decay"])
    elif config["optimizer"] == "adam":
        optimizer = Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    else:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {config['optimizer']!r}")
    return optimizer, CosineAnnealingLR(optimizer, T_max=config["epochs"])


def load_weights(model, state, path, model_name):
    """model.load_state_dict(state), with the checkpoint and model named when they do not fit."""
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise ValueError(f"checkpoint {path} does not fit model {model_name!r}: {e}") from None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped `fit`; `epochs` is the number of epochs the run folder holds (0: this run saved none).
    A KeyboardInterrupt still, for callers that catch that."""

    def __init__(self, epochs):
        super().__init__(f"interrupted after {epochs} saved epochs")
        self.epochs = epochs


class Diverged(ValueError):
    """The training loss became NaN or infinite: every step after it would be meaningless."""


def train_epoch(model, loader, optimizer, limit, desc):
    """One pass over (at most `limit` batches of) `loader`. On a terminal, a tqdm bar on stderr shows loss,
    accuracy and img/s; elsewhere (a log file, a pipe) there is no bar, only the caller's line per epoch.
    Under mpiexec the gradients are averaged over the ranks before each step, and the returned figures are
    the whole world's."""
    model.train()
    total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    bar = tqdm(total=min(len(loader), limit or len(loader)), desc=desc, unit="batch", file=sys.stderr, leave=False,
               disable=not sys.stderr.isatty() or distributed.rank() != 0)
    for batch, (images, labels) in enumerate(itertools.islice(loader, limit), 1):
        optimizer.zero_grad()
        logits = model(images)
        loss = cross_entropy(logits, labels)
        loss.backward()
        distributed.all_reduce_gradients(model)
        optimizer.step()
        n, value = len(labels), loss.item()
        if not math.isfinite(value):
            bar.close()
            raise Diverged(f"training diverged: the loss is {value} at batch {batch} of {desc} (lr "
                           f"{optimizer.param_groups[0]['lr']:g}); try a lower --lr. The run folder keeps the "
                           f"epochs saved before this one")
        total_loss += value * n
        correct += int((logits.argmax(dim=1) == labels).numpy().sum())
        seen += n
        bar.update()
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}",
                        img_s=f"{seen / (time.perf_counter() - start):.0f}", refresh=False)
    bar.close()
    seconds = time.perf_counter() - start
    total_loss, correct, seen = distributed.all_reduce(np.array([total_loss * 1.0, correct, seen], dtype=np.float64))
    return {"loss": total_loss / seen, "acc": correct / seen, "images_per_s": seen / seconds}


def evaluate(model, loader, classes, limit=None):
    """(mean loss, accuracy, confusion matrix[true, predicted]) over (at most `limit` batches of) `loader`."""
    model.eval()
    total_loss, confusion = 0.0, np.zeros((classes, classes), dtype=np.int64)
    with no_grad():
        for images, labels in itertools.islice(loader, limit):
            logits = model(images)
            total_loss += cross_entropy(logits, labels).item() * len(labels)
            np.add.at(confusion, (labels.numpy(), logits.argmax(dim=1).numpy()), 1)
    seen = int(confusion.sum())
    return total_loss / seen, float(np.trace(confusion)) / seen, confusion


def save_run(out, model, optimizer, scheduler, meta, announce=lambda: None):
    """Write the run folder after an epoch: checkpoint.npz, model.safetensors, metrics.jsonl and curves.png,
    each atomically, and with Ctrl-C held back until all are written and `announce()` has logged the epoch, so
    that they always describe the same epoch and every epoch saved is an epoch printed. model.safetensors holds the weights under PyTorch's state-dict names and, in its header, what
    `ninx eval` and `ninx export` need: the configuration and the input normalisation."""
    with deferred_interrupt():
        checkpoint.save(os.path.join(out, CHECKPOINT), {"model": model.state_dict(), "optim": optimizer.state_dict(),
                                                        "scheduler": scheduler.state_dict(), "meta": meta})
        serialization.save(model.state_dict(), os.path.join(out, WEIGHTS), weights_metadata(meta), overwrite=True)
        with atomic_open(os.path.join(out, METRICS), "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in meta["history"])
        config = meta["config"]
        plot_curves(meta["history"], os.path.join(out, CURVES), f"{config['model']} on {config['data']}")
        announce()


def weights_metadata(meta):
    """The safetensors header of a run's model.safetensors: strings, as the format wants."""
    from . import __version__
    config = meta["config"]
    info = DATASETS[config["data"]]
    return {"ninx.version": __version__, "model": config["model"], "num_classes": str(info.classes),
            "in_channels": str(info.channels), "epoch": str(len(meta["history"])),
            "config": json.dumps(config), "normalize": json.dumps(meta["normalize"])}


def load_weights_file(path):
    """(state dict, configuration, normalisation) of a run's checkpoint.npz or model.safetensors; a
    ValueError naming the file when it is neither."""
    if str(path).endswith(".safetensors"):
        header = serialization.metadata(path)
        try:
            config, normalize = json.loads(header["config"]), json.loads(header["normalize"])
        except (KeyError, ValueError):
            raise ValueError(f"{path}: not a model.safetensors of `ninx train` (no configuration in its header); "
                             f"load it with ninx.load and model.load_state_dict") from None
        check_config(config, path)
        return serialization.load(path), config, normalize
    state = load_run(path)
    return state["model"], state["meta"]["config"], state["meta"]["normalize"]


def load_run(path):
    """The checkpoint at `path`, checked to be one `ninx train` wrote: a ValueError naming the file otherwise."""
    state = checkpoint.load(path)
    meta = state.get("meta")
    missing = [key for key in ("model", "optim", "scheduler", "meta") if not isinstance(state.get(key), dict)]
    if not missing:
        missing = [key for key in ("config", "normalize", "rng", "data_rng", "history") if key not in meta]
    if missing:
        raise ValueError(f"{path}: not a checkpoint of `ninx train` (no valid {', '.join(missing)} entry)")
    check_config(meta["config"], path)
    normalize = meta["normalize"]
    if not (isinstance(normalize, list) and len(normalize) == 2 and all(
            isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v) for v in normalize)):
        raise ValueError(f"{path}: its normalisation must be [means, standard deviations], got {normalize!r}")
    history = meta["history"]
    if not isinstance(history, list) or not all(isinstance(row, dict) and "test_acc" in row for row in history):
        raise ValueError(f"{path}: its metrics history is not a list of epochs")
    return state


def log_line(text):
    """Print one line of a run's log at once, even when stdout is a pipe or a file (buffered otherwise)."""
    print(text, flush=True)


def fit(config, out, files, state=None, log=log_line):
    """Train per `config` (CONFIG_KEYS) into folder `out`, reading the data set from `files` (as
    ninx.data.locate_dataset gives them); given `state`, a checkpoint of that run, carry on from where it
    stopped. Logs one line per epoch and returns the metrics history (a list of dicts). Ctrl-C raises
    Interrupted, a NaN or infinite loss Diverged; the folder keeps every epoch finished before either."""
    distributed.init()
    world, rank = distributed.world_size(), distributed.rank()
    train_set, test_set = read_dataset(config["data"], files)
    normalize = channel_stats(train_set.images)
    manual_seed(config["seed"])
    model = make_model(config)
    optimizer, scheduler = make_optimizer(config, model)
    data_rng = np.random.default_rng((DATA_STREAM, config["seed"]))
    device, batch_size = config["device"], config["batch_size"]  # batch_size is per rank, as in PyTorch's DDP
    sampler = distributed.DistributedSampler(train_set, seed=config["seed"]) if world > 1 else None
    train_loader = DataLoader(train_set, batch_size, shuffle=sampler is None, sampler=sampler,
                              transform=make_transform(config, normalize, True), generator=data_rng, device=device)
    test_loader = DataLoader(test_set, batch_size, transform=make_transform(config, normalize, False), device=device)
    history = []
    if state is not None:
        load_weights(model, state["model"], os.path.join(out, CHECKPOINT), config["model"])
        optimizer.load_state_dict(state["optim"])
        scheduler.load_state_dict(state["scheduler"])
        set_state(state["meta"]["rng"])
        data_rng.bit_generator.state = state["meta"]["data_rng"]
        history = state["meta"]["history"]
        log(f"resumed {out} after epoch {len(history)}")
    distributed.broadcast_parameters(model)  # every rank starts from rank 0's weights
    classes = DATASETS[config["data"]].classes
    try:
        for epoch in range(len(history) + 1, config["epochs"] + 1):
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            if world > 1:  # per-epoch seeds: a resumed rank needs nothing saved by the others
                sampler.set_epoch(epoch)
                train_loader.generator = np.random.default_rng((DATA_STREAM, config["seed"], rank, epoch))
                manual_seed((config["seed"], rank, epoch))
            train = train_epoch(model, train_loader, optimizer, config["limit_batches"],
                                f"epoch {epoch}/{config['epochs']}")
            scheduler.step()
            if rank != 0:  # only rank 0 evaluates, writes the run folder and logs
                continue
            test_loss, test_acc, _ = evaluate(model, test_loader, classes, config["limit_batches"])
            if not math.isfinite(test_loss):  # the epoch's last step can blow the weights up after its loss
                raise Diverged(f"training diverged: the test loss is {test_loss} after epoch {epoch} (lr {lr:g}); "
                               f"try a lower --lr. The run folder keeps the epochs saved before this one")
            row = {"epoch": epoch, "train_loss": train["loss"], "train_acc": train["acc"], "test_loss": test_loss,
                   "test_acc": test_acc, "images_per_s": train["images_per_s"],
                   "seconds": time.perf_counter() - start, "lr": lr, "world_size": world}
            history.append(row)
            line = (f"epoch {epoch:3d}/{config['epochs']}  train loss {train['loss']:.4f} acc {train['acc']:.4f}  "
                    f"test loss {test_loss:.4f} acc {test_acc:.4f}  {train['images_per_s']:.0f} img/s  "
                    f"{row['seconds']:.1f} s")
            save_run(out, model, optimizer, scheduler, {"config": config, "normalize": normalize, "rng": get_state(),
                                                        "data_rng": data_rng.bit_generator.state, "history": history},
                     announce=lambda: log(line))
    except KeyboardInterrupt:  # save_run holds Ctrl-C back, so the folder holds exactly the epochs in `history`
        raise Interrupted(len(history)) from None
    return history


def evaluate_checkpoint(path, data=None, data_dir=None, device="cpu", batch_size=None, log=log_line):
    """(accuracy, confusion matrix) of the model saved at `path` on the test split of `data`
    (by default the data set it was trained on); logs which files it reads before reading them."""
    weights, stored, normalize = load_weights_file(path)
    config = dict(stored, device=device)
    if data or data_dir:  # another data set, or the same one from another folder
        config.update(data=data or config["data"], data_dir=data_dir)
    files = locate_dataset(config["data"], config["data_dir"])
    log(f"evaluating {path} on {config['data']}: reading {', '.join(files)}")
    model = make_model(config)
    load_weights(model, weights, path, config["model"])
    _, test_set = read_dataset(config["data"], files)
    loader = DataLoader(test_set, batch_size or config["batch_size"],
                        transform=make_transform(config, normalize, False), device=device)
    _, accuracy, confusion = evaluate(model, loader, DATASETS[config["data"]].classes)
    return accuracy, confusion
