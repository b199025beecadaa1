"""The GPU device: CuPy arrays, and the kernels as cupy.RawModule functions compiled by NVRTC — once per
process, and cached on disk by CuPy (in CUPY_CACHE_DIR when set)."""
import hashlib

from . import sources


def _headers_digest():
    """Hash of the headers the sources include: CuPy's disk cache keys on the source and the options only."""
    digest = hashlib.sha256()
    for header in sorted(sources.DIRECTORY.glob("*.cuh")):
        digest.update(header.read_bytes())
    return digest.hexdigest()[:16]


class GpuDevice:
    """The cuda device on a GPU: what launch.py asks of a device, from CuPy."""

    def __init__(self, cupy):
        self.xp = cupy
        self.multiprocessors = cupy.cuda.Device().attributes["MultiProcessorCount"]
        self.options = sources.NVRTC_OPTIONS + (f"-DNINX_HEADERS={_headers_digest()}",)
        self.modules = {}

    def function(self, module, name):
        if module not in self.modules:
            self.modules[module] = self.xp.RawModule(code=sources.path(module).read_text(), options=self.options,
                                                     name_expressions=sources.MODULES[module])
        return self.modules[module].get_function(name)
