"""The CPU that ninx's kernels are compiled for: vector width, register file, FMA, cache sizes.

Everything a kernel tunes itself to comes from here, so a kernel has no width of its own. The facts are
asked of LLVM, not of a table of CPU names: a tiny vector FMA is compiled for the chosen (cpu name, feature
string), exactly as Numba will compile our kernels, and its assembly says which registers carry a 512-bit
vector (zmm: 64 bytes; ymm: 32; anything else: 16) and whether the FMA became one instruction or a call to
`fmaf`. This is right for any CPU LLVM knows and for any feature string (one that leaves out AVX-512 or
FMA, say), with no list of CPUs to keep up to date.

Registers: 32 where the vectors are 512-bit (zmm0–31) or on AArch64 (v0–31), else 16 (x86's xmm/ymm0–15;
an AVX-512 CPU held to 256-bit vectors is counted as 16 too, which only costs tile size).

Cache sizes, and L1d's ways, are read from /sys/devices/system/cpu/cpu0/cache (Linux), else DEFAULT_CACHES
and DEFAULT_L1D_WAYS. They size the GEMM's blocks at run time and are not in Numba's cache key, so nothing
compiled may depend on them.

This module imports llvmlite but never numba: `codegen` uses it before numba is loaded.
"""
import os
import sys
import platform
from typing import NamedTuple

CACHE_DIR = "/sys/devices/system/cpu/cpu0/cache"
DEFAULT_CACHES = {"l1d": 32 << 10, "l2": 512 << 10, "l3": 8 << 20}  # a modest x86 or ARM core
DEFAULT_L1D_WAYS = 8  # the fewest that x86 and ARM cores of the last decade have

_PROBE = """
declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)
define void @probe(ptr %p) {
  %q = getelementptr <16 x float>, ptr %p, i64 1
  %r = getelementptr <16 x float>, ptr %p, i64 2
  %a = load <16 x float>, ptr %p, align 4
  %b = load <16 x float>, ptr %q, align 4
  %c = load <16 x float>, ptr %r, align 4
  %d = call <16 x float> @llvm.fma.v16f32(<16 x float> %a, <16 x float> %b, <16 x float> %c)
  store <16 x float> %d, ptr %p, align 4
  ret void
}
"""


class Target(NamedTuple):
    """One code-generation target: what Numba is told (cpu_name, cpu_features) and what follows from it."""
    cpu_name: str
    cpu_features: str  # "" means the named CPU's own features, as LLVM defines them
    vector_bytes: int  # 64 (AVX-512), 32 (AVX/AVX2) or 16 (SSE, NEON, or unknown)
    vector_registers: int
    fma: bool
    l1d: int  # bytes of each cache level
    l2: int
    l3: int
    l1d_ways: int = DEFAULT_L1D_WAYS  # L1d's associativity

    def describe(self):
        """A one-line summary, e.g. 'haswell: 32-byte vectors, 16 registers, FMA'."""
        fma = "FMA" if self.fma else "no FMA"
        return f"{self.cpu_name}: {self.vector_bytes}-byte vectors, {self.vector_registers} registers, {fma}"


def _llvm():
    """llvmlite.binding with the native target and its assembly printer ready."""
    import llvmlite.binding as llvm
    for step in (llvm.initialize_native_target, llvm.initialize_native_asmprinter):
        try:
            step()
        except RuntimeError:  # llvmlite versions that initialise on import
            pass
    return llvm


def host_cpu():
    """(cpu name, feature string) of the machine this runs on, as LLVM names them."""
    llvm = _llvm()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def probe_assembly(cpu_name, cpu_features):
    """The x86 or ARM assembly of one 16-lane float32 FMA compiled for (cpu_name, cpu_features)."""
    llvm = _llvm()
    module = llvm.parse_assembly(_PROBE)
    module.triple = llvm.get_process_triple()
    machine = llvm.Target.from_triple(module.triple).create_target_machine(
        cpu=cpu_name, features=cpu_features, opt=2)
    return machine.emit_assembly(module)


def _sysfs_caches(cache_dir, names):
    """{name: text} of each of cpu0's caches (cache_dir/index0 … index7) that has every file in `names`."""
    for index in range(8):
        try:
            yield {name: open(os.path.join(cache_dir, f"index{index}", name)).read().strip() for name in names}
        except OSError:
            continue


def cache_sizes(cache_dir=CACHE_DIR):
    """{'l1d', 'l2', 'l3': bytes} of cpu0's data and unified caches; DEFAULT_CACHES for what is missing."""
    found = {}
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    for fields in _sysfs_caches(cache_dir, ("level", "type", "size")):
        if fields["type"] == "Instruction":
            continue
        size = fields["size"]
        found[f"l{fields['level']}" + ("d" if fields["level"] == "1" else "")] = \
            int(size.rstrip("KMG")) * units.get(size[-1], 1)
    return {level: found.get(level, default) for level, default in DEFAULT_CACHES.items()}


def l1d_ways(cache_dir=CACHE_DIR):
    """The associativity of cpu0's L1 data cache, else DEFAULT_L1D_WAYS."""
    for fields in _sysfs_caches(cache_dir, ("level", "type", "ways_of_associativity")):
        if fields["level"] == "1" and fields["type"] != "Instruction" and fields["ways_of_associativity"].isdigit():
            return max(1, int(fields["ways_of_associativity"]))
    return DEFAULT_L1D_WAYS


def target_for(cpu_name, cpu_features, caches=None, ways=None):
    """The Target of code compiled for (cpu_name, cpu_features), on a machine with `caches` and an L1d of
    `ways` ways."""
    asm = probe_assembly(cpu_name, cpu_features)
    width = 64 if "zmm" in asm else 32 if "ymm" in asm else 16
    arm = platform.machine().lower() in ("aarch64", "arm64")
    registers = 32 if width == 64 or arm else 16
    caches = caches or cache_sizes()
    return Target(cpu_name, cpu_features, width, registers, "fmaf" not in asm, caches["l1d"], caches["l2"],
                  caches["l3"], ways or l1d_ways())


def current():
    """The Target Numba compiles for in this process: its configured cpu name and features, else the host's.

    Reads numba.config when numba is loaded (it read the environment then), else the environment
    (`codegen.configure` has set it)."""
    if "numba" in sys.modules:
        from numba.core import config
        name, features = config.CPU_NAME, config.CPU_FEATURES
    else:
        name, features = os.environ.get("NUMBA_CPU_NAME"), os.environ.get("NUMBA_CPU_FEATURES")
    host_name, host_features = host_cpu()
    return target_for(name or host_name, host_features if features is None else features)
