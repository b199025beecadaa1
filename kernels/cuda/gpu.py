"""The GPU device: CuPy arrays, and the kernels as cupy.RawModule functions compiled by NVRTC — once per
process, and cached on disk by CuPy (in CUPY_CACHE_DIR when set)."""
import hashlib

from .launch import DIRECTORY
from .sources import NVRTC_OPTIONS


def _headers_digest():
    """Hash of the headers the sources include: CuPy's disk cache keys on the source and the options only."""
    digest = hashlib.sha256()
    for header in sorted(DIRECTORY.glob("*.cuh")):
        digest.update(header.read_bytes())
    return digest.hexdigest()[:16]


class GpuDevice:
    """The cuda device on a GPU: what launch.py asks of a device, from CuPy."""

    def __init__(self, cupy):
        self.xp = cupy
        self.multiprocessors = cupy.cuda.Device().attributes["MultiProcessorCount"]
        self.options = NVRTC_OPTIONS + (f"-DNINX_HEADERS={_headers_digest()}",)
        self.modules = {}

    def function(self, source, instance):
        """`instance` of the launch.Source `source`, compiled with all its instances on first use."""
        if source.module not in self.modules:
            self.modules[source.module] = self.xp.RawModule(code=source.path.read_text(), options=self.options,
                                                            name_expressions=source.instances)
        return self.modules[source.module].get_function(instance)
