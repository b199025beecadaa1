"""Switches of the backends, spelled as PyTorch's torch.backends: `ninx.backends.cuda.allow_tf32`."""


class CudaSwitches:
    """allow_tf32: float32 GEMMs on the cuda device (and the 1×1 convolutions, which are GEMMs) run on the
    tensor cores in TF32 — inputs rounded to a 10-bit mantissa, products summed in float32 — as
    torch.backends.cuda.matmul.allow_tf32 does. Off by default: results then are float32's."""

    allow_tf32 = False


cuda = CudaSwitches()
