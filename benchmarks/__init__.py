"""ninx's CPU speed suite (`python -m benchmarks`, `ninx bench`): the roof, the GEMM core, the small NiN's ops
and its training step, each against its reference (numpy.matmul, PyTorch). See `benchmarks/__main__.py`."""
