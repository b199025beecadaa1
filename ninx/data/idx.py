"""Reader for IDX files (the MNIST format), raw or gzipped, that checks every header field and the length.

Layout: two zero bytes, a dtype code, the number of dimensions d, d big-endian uint32 sizes, then the values
(big-endian) in row-major order. Anything else — a bad magic number, an unknown dtype code, a file shorter
or longer than its header says, a broken gzip stream — is a ValueError naming the file.
"""
import gzip
import math
import zlib

import numpy as np

DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path):
    """The file's bytes, decompressed when it is gzipped (recognised by its magic number, not its name)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path}: broken gzip data ({e})") from None


def parse_idx(data, name="<bytes>"):
    """The array an IDX byte string holds, in native byte order."""
    if len(data) < 4 or data[:2] != b"\0\0":
        raise ValueError(f"{name}: not an IDX file (magic number {data[:4].hex() or 'missing'})")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise ValueError(f"{name}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header gives 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(DTYPES[code])
    expected = header + math.prod(shape) * dtype.itemsize  # python ints: a forged header cannot overflow
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(f"{name}: {problem}: shape {shape} of {dtype.name} needs {expected} bytes, "
                         f"file holds {len(data)}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path):
    """The array stored in the IDX file at `path` (raw or gzipped)."""
    return parse_idx(read_bytes(path), str(path))
