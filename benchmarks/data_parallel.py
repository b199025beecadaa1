"""Data-parallel throughput of the small NiN's training step, in images/s: `mpiexec -n 2` ranks of one Numba
thread each (per-rank batch B/2, gradients averaged by ninx.distributed) against one process of two threads
(batch B). Run it as `python -m benchmarks.data_parallel [--batch 128] [--steps 5]`; it needs mpi4py and
mpiexec (`pip install 'ninx[mpi]'`), and it prints one JSON line per configuration and their ratio.

Each configuration runs in its own processes, so that NUMBA_NUM_THREADS is set before numba is imported. The
ranks train on random batches (dropout on, SGD lr 0.1, as benchmarks.train_step); the all-reduce's share of
the step is reported too.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from . import nin

MODULE = f"{__package__}.data_parallel"


def worker(batch, steps, warmup=1):
    """Time `steps` training steps on this rank; rank 0 prints {ranks, threads, images/s, all-reduce share}."""
    import numba

    import ninx
    from ninx import distributed as dist
    from ninx import models, optim
    dist.init()
    rng = np.random.default_rng(dist.rank())
    x = ninx.tensor(rng.standard_normal((batch,) + nin.IMAGE, dtype=np.float32))
    labels = ninx.tensor(rng.integers(0, nin.CLASSES, batch))
    model = models.get_model("nin-small", final_relu=True, init="default")
    dist.broadcast_parameters(model)
    optimizer = optim.SGD(model.parameters(), lr=nin.LR)
    reducing = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            dist.all_reduce(np.zeros(1))  # start the clock on every rank together
            start, reducing = time.perf_counter(), 0.0
        optimizer.zero_grad()
        ninx.nn.functional.cross_entropy(model(x), labels).backward()
        before = time.perf_counter()
        dist.all_reduce_gradients(model)
        reducing += time.perf_counter() - before
        optimizer.step()
    elapsed = time.perf_counter() - start
    if dist.rank() == 0:
        print(json.dumps({"ranks": dist.world_size(), "threads": numba.config.NUMBA_NUM_THREADS,
                          "batch_per_rank": batch, "images_per_s": dist.world_size() * batch * steps / elapsed,
                          "all_reduce_share": reducing / elapsed}), flush=True)


def launch(ranks, threads, batch, steps):
    """The result line of one configuration, run in fresh processes (under mpiexec when ranks > 1)."""
    command = [sys.executable, "-m", MODULE, "--worker", "--batch", str(batch), "--steps", str(steps)]
    if ranks > 1:
        command = [os.path.join(sys.prefix, "bin", "mpiexec"), "-n", str(ranks)] + command
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_parallel", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=nin.BATCH, help="images per step over all ranks (default 128)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps, after one warm-up step (default 5)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.batch, args.steps)
    print(json.dumps({"load_average_before": os.getloadavg(), "cores": os.cpu_count()}))
    one = launch(1, 2, args.batch, args.steps)
    print(json.dumps(one))
    two = launch(2, 1, args.batch // 2, args.steps)
    print(json.dumps(two))
    print(f"2 ranks × 1 thread / 1 process × 2 threads: {two['images_per_s'] / one['images_per_s']:.2f}")


if __name__ == "__main__":
    main()
