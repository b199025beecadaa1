"""Every CUDA kernel, in every template instance, compiles to PTX for compute_80 and compute_90 — with NVRTC
from the nvidia-cuda-nvrtc-cu12 wheel, called through cupy_backends, which needs neither a GPU nor a driver.
And the list of instances misses no kernel: what it lists is what the GPU loads and the emulator builds."""
import re

import pytest

from ninx_kernels.cuda import sources, tiling

ARCHITECTURES = ("compute_80", "compute_90")


def compile_ptx(path, names, architecture):
    """The PTX text of the .cu file at `path` for one architecture, checked to hold a kernel for each of the name
    expressions `names`."""
    from cupy_backends.cuda.libs import nvrtc
    program = nvrtc.createProgram(path.read_text(), path.name, [], [])
    try:
        for name in names:
            nvrtc.addNameExpression(program, name)
        try:
            nvrtc.compileProgram(program, [f"-arch={architecture}", *sources.NVRTC_OPTIONS])
        except nvrtc.NVRTCError as error:
            raise AssertionError(f"{path.name} for {architecture}: {error}\n{nvrtc.getProgramLog(program)}") from None
        ptx, lowered = nvrtc.getPTX(program), {name: nvrtc.getLoweredName(program, name) for name in names}
    finally:
        nvrtc.destroyProgram(program)
    text = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert f".target sm_{architecture.split('_')[1]}" in text
    for name, symbol in lowered.items():
        assert re.search(rf"\.entry {re.escape(symbol)}\(", text), f"{name} ({symbol}) is not a kernel in the PTX"
    return text


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("module", sorted(sources.MODULES))
def test_every_instance_compiles_to_ptx(module, architecture):
    compile_ptx(sources.path(module), sources.MODULES[module], architecture)


@pytest.mark.parametrize("module", sorted(sources.MODULES))
def test_every_kernel_is_instantiated_for_float_and_double(module):
    """... (only float for a float-only one: TF32) and a tiled kernel (mainloop.cuh's) for every tile shape
    too: name<float, Tile128x128>."""
    kernels = set(re.findall(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(",
                             sources.path(module).read_text()))
    assert kernels, f"no kernels found in {module}.cu"
    instances = sources.MODULES[module]
    assert {name.split("<")[0] for name in instances} == kernels
    for kernel in kernels:
        arguments = {name[len(kernel) + 1:-1] for name in instances if name.startswith(kernel + "<")}
        shapes = [tile.name for tile in tiling.TILINGS] if any("," in a for a in arguments) else [None]
        types = ("float",) if kernel in sources.SOURCES[module].float_only else ("float", "double")
        assert arguments == {t if s is None else f"{t}, {s}" for t in types for s in shapes}


def test_every_source_is_listed():
    assert {p.stem for p in sources.DIRECTORY.glob("*.cu")} == set(sources.MODULES)
