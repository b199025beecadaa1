"""ninx's compute kernels, one home per backend: `cpu` (Numba) and `cuda` (CUDA C++ sources).

Installed as the package `ninx_kernels` (see setup.cfg). Importing it first fixes Numba's code generation
(see `ninx_kernels.codegen`), so every kernel below is compiled the same way.
"""
from . import codegen  # noqa: F401  (must run before numba is imported)
