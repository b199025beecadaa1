"""Where downloaded data lives, and a download that keeps a file only when its checksum matches."""
import hashlib
import os
import urllib.request

from ..atomic import atomic_open


def cache_dir():
    """$NINX_DATA_DIR, else $XDG_CACHE_HOME/ninx, else ~/.cache/ninx."""
    if os.environ.get("NINX_DATA_DIR"):
        return os.environ["NINX_DATA_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ninx")


def download(url, path, md5, timeout=60):
    """Fetch `url` to `path`; the file appears (atomically) only if its MD5 is `md5`. Raises OSError."""
    with atomic_open(path) as out, urllib.request.urlopen(url, timeout=timeout) as response:
        digest = hashlib.md5()
        for block in iter(lambda: response.read(1 << 20), b""):
            out.write(block)
            digest.update(block)
        if digest.hexdigest() != md5:
            raise OSError(f"{url}: MD5 is {digest.hexdigest()}, expected {md5} (a corrupt or altered download)")
    return path
