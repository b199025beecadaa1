"""Atomic file writes: write a temporary file beside the target, fsync it, rename it over the target."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """A file object whose contents replace `path` only when the `with` block completes without error.

    A crash at any point leaves `path` as it was before or as it is after, never half written."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(partial, 0o666 & ~umask)  # mkstemp makes it private; give it a new file's usual mode
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        os.remove(partial)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename itself durable (skipped where a folder cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
