"""Run folders that are never lost: one writer at a time, no silent overwrite, no half-saved epoch.

A folder *holds a run* once `ninx train` has saved an epoch there (checkpoint.npz or metrics.jsonl exists).
`claim(out)` takes a run folder for one process: it creates the folder, checks that a file can be written
there, and holds an exclusive `fcntl.flock` on its `.lock` file until the process ends or the returned file
is closed, so a second `ninx train` into the same folder stops at once with a message instead of racing the
first one (the lock goes away with the process, so a killed run leaves nothing stale behind).
`fresh_default(base)` picks `base`, else `base-2`, `base-3`, … — the first that holds no run and is not in use.
`deferred_interrupt()` holds Ctrl-C back while an epoch's files are written, so they always agree.
"""
import contextlib
import fcntl
import os
import signal
import tempfile
import threading

CHECKPOINT, METRICS, CURVES, LOCK = "checkpoint.npz", "metrics.jsonl", "curves.png", ".lock"
WEIGHTS = "model.safetensors"  # the model alone, for PyTorch, onnxruntime or `ninx eval` (see ninx.serialization)


class RunInUse(OSError):
    """Another process holds the run folder's lock."""


def holds_run(out):
    """Whether `out` holds a saved run (at least one finished epoch)."""
    return any(os.path.exists(os.path.join(out, name)) for name in (CHECKPOINT, METRICS))


def claim(out):
    """Lock run folder `out` for this process and check that it is writable; returns the open lock file
    (closing it, or leaving a `with` block on it, unlocks the folder).

    Raises RunInUse when another process holds it, and OSError (naming the folder) when it cannot be
    created or written."""
    try:
        os.makedirs(out, exist_ok=True)
        lock = open(os.path.join(out, LOCK), "a+")
    except OSError as e:
        raise OSError(f"cannot write to run folder {out}: {e.strerror or e}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip()
        lock.close()
        raise RunInUse(f"{out} is in use by another `ninx train` (process {owner or 'unknown'}); wait for it to "
                       f"end or choose another --out") from None
    try:
        with tempfile.TemporaryFile(dir=out):  # the lock file may exist already: try a new file, as saving will
            pass
    except OSError as e:
        lock.close()
        raise OSError(f"cannot write to run folder {out}: {e.strerror or e}") from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def fresh_default(base):
    """(folder, lock): the first of `base`, `base-2`, `base-3`, … that holds no run and is not in use, claimed."""
    for n in range(1, 10_000):
        out = base if n == 1 else f"{base}-{n}"
        if holds_run(out):
            continue
        try:
            lock = claim(out)
        except RunInUse:
            continue
        if not holds_run(out):  # another process may have saved its first epoch since the check above
            return out, lock
        lock.close()
    raise OSError(f"no free run folder {base}-N for N up to 9999; choose one with --out")


@contextlib.contextmanager
def deferred_interrupt():
    """Run the block with Ctrl-C (SIGINT) held back; a Ctrl-C that came meanwhile is delivered when it ends, to
    the handler SIGINT had before: Python's raises KeyboardInterrupt, an ignored SIGINT (a job started in the
    background of a script ignores it) stays ignored.

    Outside the main thread signals cannot be handled, and the block simply runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        signal.raise_signal(signal.SIGINT)
