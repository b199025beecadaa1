"""A user's own data-parallel training loop on ninx.distributed, run by tests/test_distributed.py as
`mpiexec -n 2 python mpi_training_loop.py ...` (or as one plain process).

    train OUT BATCH EPOCHS   train a NiN (dropout off) and a small BatchNorm net on synthetic digits-sized
                             data with per-rank batch BATCH; rank r writes OUT/rank<r>.json
    die                      rank 1 leaves with os._exit(1) in its second step
    raise                    rank 1 raises in its second step
    abort                    rank 1 calls ninx.distributed.abort(3) in its second step

Each rank seeds its own initial weights differently (manual_seed(rank)), so equal parameters at the end show
that broadcast_parameters and all_reduce_gradients did their work.
"""
import hashlib
import json
import os
import sys

import numpy as np

import ninx
from ninx import distributed as dist
from ninx import nn
from ninx.data import ArrayDataset, DataLoader
from ninx.distributed import DistributedSampler
from ninx.nn.functional import cross_entropy
from ninx.optim import SGD

SAMPLES = 96  # divisible by 2 ranks × batch, so no rank pads its shard and the two runs see the same samples


def synthetic_digits():
    """SAMPLES 1×8×8 images whose label is the brightest of ten fixed regions: learnable in a few steps."""
    rng = np.random.default_rng(123)
    images = rng.random((SAMPLES, 1, 8, 8), dtype=np.float32)
    regions = rng.random((10, 64)) < 0.3
    labels = np.argmax(images.reshape(SAMPLES, 64) @ regions.T, axis=1)
    return ArrayDataset(images, labels)


def nin_without_dropout():
    model = ninx.models.get_model("nin-digits")
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def batchnorm_net():
    """A conv, a BatchNorm and a linear layer, plus a parameter that no step uses (it gets no gradient)."""
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.GlobalAvgPool2d(),
                        nn.Flatten(), nn.Linear(8, 10))
    net.register_parameter("unused", nn.Parameter(ninx.randn(3)))
    return net


def fingerprint(tensors):
    return hashlib.sha256(b"".join(np.ascontiguousarray(t.numpy()).tobytes() for t in tensors)).hexdigest()


def train(model, dataset, batch, epochs, bucket_bytes=dist.BUCKET_BYTES, on_step=None):
    """The loop of the module docstring of ninx.distributed; returns the loss of every step, averaged over
    all ranks' samples."""
    sampler = DistributedSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler)
    dist.broadcast_parameters(model)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for images, labels in loader:
            if on_step is not None:
                on_step(len(losses))
            optimizer.zero_grad()
            loss = cross_entropy(model(images), labels)
            loss.backward()
            dist.all_reduce_gradients(model, bucket_bytes)
            optimizer.step()
            losses.append(float(dist.all_reduce(np.array([loss.item()]))[0]) / dist.world_size())
    return losses


def main(mode, *args):
    dist.init()
    ninx.manual_seed(dist.rank())
    if mode == "train":
        out, batch, epochs = args[0], int(args[1]), int(args[2])
        nin, bn_net = nin_without_dropout(), batchnorm_net()
        losses = train(nin, synthetic_digits(), batch, epochs, bucket_bytes=16 * 1024)  # about ten buckets
        train(bn_net, synthetic_digits(), batch, 1)
        import numba
        report = {"world_size": dist.world_size(), "threads": numba.config.NUMBA_NUM_THREADS,
                  "mpi_imported": "mpi4py" in sys.modules, "losses": losses,
                  "parameters": fingerprint(nin.parameters()), "bn_parameters": fingerprint(bn_net.parameters()),
                  "bn_running_mean": bn_net[1].running_mean.numpy().tolist(),
                  "unused_grad_is_none": bn_net.unused.grad is None}
        with open(os.path.join(out, f"rank{dist.rank()}.json"), "w") as f:
            json.dump(report, f)
    elif mode in ("die", "raise", "abort"):
        def fail_on_rank1(step):
            if dist.rank() == 1 and step == 1:
                if mode == "die":
                    os._exit(1)
                if mode == "abort":
                    print("rank 1 stops on purpose", flush=True)
                    dist.abort(3)
                raise RuntimeError("rank 1 fails on purpose")
        train(batchnorm_net(), synthetic_digits(), 8, 1000, on_step=fail_on_rank1)
        print("rank", dist.rank(), "finished all epochs", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
