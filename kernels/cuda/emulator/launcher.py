"""The emulator's cupy.RawModule and RawKernel: `kernel(grid, block, args, shared_mem=0)` over numpy arrays.

Before a launch each argument is checked against the kernel's C parameter types — an array of the pointee's
dtype (or np.uint64(0), a null pointer) for a pointer, a numpy scalar of exactly the parameter's type for a
value — so what passes here reaches cupy bit for bit. Each array is copied between guard bands (guards.py); each
array the kernel may write (a non-const pointer) is poisoned first, unless the same array is passed to a
const pointer too (the kernel reads it: an in-out buffer). After the launch the guards are checked and the
written arrays copied back.
"""
import ctypes
import functools
from dataclasses import dataclass

import numpy as np

from . import build
from .guards import GuardedCopy

C_TYPES = {"float": np.float32, "double": np.float64, "int": np.int32, "long long": np.int64}


class KernelFault(RuntimeError):
    """A kernel wrote outside an array or deadlocked, or its launch configuration is invalid."""


@dataclass(frozen=True)
class Parameter:
    text: str       # as C declares it, e.g. "const float*"
    dtype: np.dtype
    pointer: bool
    const: bool

    @classmethod
    def parse(cls, text):
        base = text.removeprefix("const ").removesuffix("*")
        return cls(text, np.dtype(C_TYPES[base]), text.endswith("*"), text.startswith("const "))


@functools.cache
def _runtime():
    # RTLD_GLOBAL: every module library resolves ninx_emu_run and the barriers against this one
    return ctypes.CDLL(str(build.runtime_library()), mode=ctypes.RTLD_GLOBAL)


class EmulatedModule:
    """One .cu file built for the emulator, with a kernel for each of its name expressions."""

    def __init__(self, source, name_expressions):
        _runtime()
        self.source = source
        library = ctypes.CDLL(str(build.module_library(source, name_expressions)))
        library.ninx_emu_kernel_name.restype = library.ninx_emu_kernel_signature.restype = ctypes.c_char_p
        self.kernels = {}
        for i in range(library.ninx_emu_kernel_count()):
            name = library.ninx_emu_kernel_name(i).decode()
            signature = library.ninx_emu_kernel_signature(i).decode()
            self.kernels[name] = EmulatedKernel(library, i, name, [Parameter.parse(p) for p in signature.split(",")])

    def get_function(self, name):
        if name not in self.kernels:
            raise KeyError(f"{self.source} has no kernel {name!r}; it has {sorted(self.kernels)}")
        return self.kernels[name]


def _dims(value):
    """A grid or block size (an int or up to 3 ints) as CUDA's three dimensions."""
    dims = (int(value),) if np.ndim(value) == 0 else tuple(int(v) for v in value)
    return (ctypes.c_uint * 3)(*(dims + (1, 1, 1))[:3])


def _key(array):
    """Arrays with the same key are the same array to the kernel (one copy, one pointer)."""
    return array.ctypes.data, array.shape, array.strides, array.dtype


class EmulatedKernel:
    def __init__(self, library, index, name, parameters):
        self.library, self.index, self.name, self.parameters = library, index, name, parameters

    def __call__(self, grid, block, args, shared_mem=0):
        """Run the kernel on a grid of blocks, as cupy's RawKernel does: `args` in the order of its parameters."""
        args = tuple(args)
        self._check(args, shared_mem)
        arrays = [(i, a, p) for i, (a, p) in enumerate(zip(args, self.parameters)) if isinstance(a, np.ndarray)]
        copies = {}
        for _, a, _ in arrays:
            copies.setdefault(_key(a), GuardedCopy(a))
        written = {_key(a) for _, a, p in arrays if not p.const}
        self._refuse_overlaps(arrays, written)
        for key in written - {_key(a) for _, a, p in arrays if p.const}:  # in-out arrays keep their values
            copies[key].poison()
        values = [ctypes.c_void_p(copies[_key(a)].pointer) if isinstance(a, np.ndarray)
                  else ctypes.create_string_buffer(a.tobytes()) for a in args]
        pointers = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        error = ctypes.create_string_buffer(512)
        if self.library.ninx_emu_launch(self.index, _dims(grid), _dims(block), pointers, error, len(error)):
            raise KernelFault(f"{self.name}: {error.value.decode()}")
        for i, a, p in arrays:
            damage = copies[_key(a)].damage()
            if damage:
                raise KernelFault(f"{self.name} wrote out of bounds of argument {i} ({p.text}, {a.dtype} "
                                  f"array of shape {a.shape}): {damage}")
        for key in written:
            copies[key].copy_back()

    def _check(self, args, shared_mem):
        if shared_mem:
            raise KernelFault(f"{self.name}: dynamic shared memory is not emulated (shared_mem={shared_mem})")
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name} takes {len(self.parameters)} arguments "
                            f"({', '.join(p.text for p in self.parameters)}), got {len(args)}")
        for i, (arg, p) in enumerate(zip(args, self.parameters)):
            where = f"{self.name}: argument {i} ({p.text})"
            null = isinstance(arg, np.uint64) and arg == 0
            if p.pointer and not (isinstance(arg, np.ndarray) or null):
                raise TypeError(f"{where} must be a numpy array or np.uint64(0) (a null pointer; CuPy 13.3 passes "
                                f"None as 0xffffffff, cupy#9046), got {arg!r}")
            if p.pointer and not null and arg.dtype != p.dtype:
                raise TypeError(f"{where} must be an array of {p.dtype}, got one of {arg.dtype}")
            if not p.pointer and (not isinstance(arg, np.generic) or arg.dtype != p.dtype):
                raise TypeError(f"{where} must be a numpy {p.dtype} scalar, got {arg!r} of type {type(arg).__name__}")

    def _refuse_overlaps(self, arrays, written):
        """Distinct arrays sharing memory, one of them written, would be separate copies here but not on a GPU."""
        for i, a, _ in arrays:
            for j, b, _ in arrays:
                if i < j and _key(a) != _key(b) and {_key(a), _key(b)} & written and np.shares_memory(a, b):
                    raise KernelFault(f"{self.name}: arguments {i} and {j} overlap, and one of them is written")
