"""Every CUDA kernel, in every template instance, compiles to PTX for compute_80 and compute_90 — with NVRTC
from the nvidia-cuda-nvrtc-cu12 wheel, called through cupy_backends, which needs neither a GPU nor a driver.
And the list of instances misses no kernel: what it lists is what the GPU loads and the emulator builds."""
import re
from itertools import product

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


# a kernel's template parameters, as the .cu file declares them, and the arguments each takes in an instance
TEMPLATE_ARGUMENTS = {"typename T": ("float", "double"), "typename Index": ("int", "long long"),
                      "class Tile": tuple(tile.name for tile in tiling.TILINGS)}


@pytest.mark.parametrize("module", sorted(sources.MODULES))
def test_every_kernel_is_instantiated_for_float_and_double_and_each_index_type_or_tile_shape(module):
    """A kernel template <typename T> has the instances k<float> and k<double> (only k<float> if the Source
    says float only: TF32); one template <typename T, typename Index> has k<float, int>, k<float, long long>,
    k<double, int> and k<double, long long>; one template <typename T, class Tile> (mainloop.cuh's) one per
    tile shape of the table, k<float, Tile128x128>, …"""
    text = sources.path(module).read_text()
    kernels = re.findall(r"template\s*<([^>]*)>\s*__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(",
                         text)
    assert kernels, f"no kernels found in {module}.cu"
    assert len(kernels) == text.count("__global__"), f"{module}.cu has a kernel that is not a template"
    expected = set()
    for parameters, kernel in kernels:
        parameters = [p.strip() for p in parameters.split(",")]
        assert set(parameters) <= set(TEMPLATE_ARGUMENTS), f"{kernel} has template parameters {parameters}"
        choices = [("float",) if p == "typename T" and kernel in sources.SOURCES[module].float_only
                   else TEMPLATE_ARGUMENTS[p] for p in parameters]
        expected |= {f"{kernel}<{', '.join(types)}>" for types in product(*choices)}
    assert set(sources.MODULES[module]) == expected


def test_every_source_is_listed():
    assert {p.stem for p in sources.DIRECTORY.glob("*.cu")} == set(sources.MODULES)
