"""Data-parallel training across processes on MPI (through mpi4py), as PyTorch's DistributedDataParallel does
it: every process (a rank) holds the whole model, reads its own shard of each epoch's data, and after backward
averages its gradients with the other ranks', so that all of them take the same optimizer step.

    ninx.distributed.init()
    sampler = DistributedSampler(train_set, shuffle=True, seed=0)
    loader = DataLoader(train_set, batch_size=32, sampler=sampler)    # 32 per rank
    broadcast_parameters(model)                                       # every rank starts from rank 0's weights
    for epoch in range(epochs):
        sampler.set_epoch(epoch)                                      # a new shuffled order each epoch
        for images, labels in loader:
            optimizer.zero_grad()
            cross_entropy(model(images), labels).backward()
            all_reduce_gradients(model)
            optimizer.step()
    if rank() == 0:
        ...                                                           # only rank 0 writes files

Run it as `mpiexec -n 2 python train.py`. Started without mpiexec (or by `mpiexec -n 1`) the same script runs
as world size 1 and never imports mpi4py.

Normalisation uses each rank's own batch (no SyncBatchNorm), and BatchNorm's running statistics stay per rank:
only parameters are kept equal; rank 0's statistics are the ones it saves. (PyTorch's DDP by default also
overwrites the other ranks' buffers with rank 0's before each forward; that changes nothing rank 0 computes
or saves, so ninx does not spend the communication.)

This module is imported by `ninx/__init__.py` before numba is (see `set_threads_per_rank`), so it imports
nothing of ninx at the top.
"""
import os
import sys
import time

import numpy as np

# What MPI launchers tell the processes they start: the world size, and how many ranks share this node.
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")                    # Open MPI; MPICH's Hydra, Intel MPI
LOCAL_SIZE_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")

# A failing rank waits this long between printing its traceback and aborting: the abort makes mpiexec kill
# every process at once, output it has not yet forwarded included.
ABORT_GRACE_S = 0.5
BUCKET_BYTES = 25 * 2**20  # gradients travel in buckets of about this size (DDP's default bucket_cap_mb)

_state = {"initialized": False, "comm": None, "MPI": None}  # comm stays None in a world of one process


def _announced(names, environ):
    """The first of the launcher's variables `names` that is set, as an int; 1 when none is."""
    for name in names:
        if name in environ:
            return int(environ[name])
    return 1


def threads_per_rank(environ=os.environ, cores=None):
    """NUMBA_NUM_THREADS for this process: the user's setting if any, else the node's cores shared equally
    by the ranks the launcher started on it (at least one each); None where one process has the node."""
    if "NUMBA_NUM_THREADS" in environ:
        return int(environ["NUMBA_NUM_THREADS"])
    ranks_here = _announced(LOCAL_SIZE_VARIABLES, environ)
    if ranks_here == 1:
        return None
    return max(1, (cores or os.cpu_count()) // ranks_here)


def set_threads_per_rank():
    """Give each rank on this node its share of the cores, so that two ranks do not each start a Numba
    thread per core and fight over them. Numba reads NUMBA_NUM_THREADS once, when it is imported: this runs
    from `ninx/__init__.py` before that, and does nothing once numba is loaded or where the user chose."""
    threads = threads_per_rank()
    if threads is not None and "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)


def init():
    """Join the processes mpiexec started; a no-op after the first call. Without a launcher, or with one
    process, the world is this process alone and mpi4py is not imported.

    From here on an uncaught exception in any rank aborts every rank (see `abort`): otherwise the others
    would wait in their next collective for ever, because the failed rank's interpreter waits in MPI's
    finalisation instead of exiting. A rank that dies (killed, or `os._exit`) is handled by mpiexec, which
    ends the rest.
    """
    if _state["initialized"]:
        return
    size = _announced(SIZE_VARIABLES, os.environ)
    if size > 1:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ImportError(f"this process is one of {size} that mpiexec started, but mpi4py is not "
                              f"installed; install it with: pip install 'ninx[mpi]'") from e
        comm = MPI.COMM_WORLD
        if comm.Get_size() != size:
            raise RuntimeError(f"mpiexec started {size} processes but mpi4py's MPI library sees "
                               f"{comm.Get_size()}: mpiexec and mpi4py come from different MPI installations; "
                               f"run the mpiexec installed beside mpi4py's MPI (`pip install 'ninx[mpi]'`)")
        _state.update(comm=comm, MPI=MPI)
        _abort_on_uncaught_exception(comm)
    _state["initialized"] = True


def _abort_on_uncaught_exception(comm):
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        sys.stderr.write(f"ninx.distributed: rank {comm.Get_rank()} failed; aborting all "
                         f"{comm.Get_size()} ranks\n")
        abort(1)

    sys.excepthook = hook


def abort(status=1):
    """End every rank now, with exit status `status` (`MPI_Abort`); in a world of one, do nothing and let
    the caller exit as usual. For a rank that must stop while the others go on: one that leaves through
    `sys.exit` or by returning an error status waits in MPI's finalisation, the others in their next
    collective, and the job hangs."""
    comm = _state["comm"]
    if comm is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(ABORT_GRACE_S)
    comm.Abort(status)


def is_initialized():
    return _state["initialized"]


def _comm(caller):
    """The communicator (None for a world of one), after checking that `init()` has run."""
    if not _state["initialized"]:
        raise RuntimeError(f"ninx.distributed.{caller}() before ninx.distributed.init()")
    return _state["comm"]


def world_size():
    """How many ranks train together (1 without mpiexec)."""
    comm = _comm("world_size")
    return 1 if comm is None else comm.Get_size()


def rank():
    """This process's rank, 0 … world_size() - 1; rank 0 is the one that writes files."""
    comm = _comm("rank")
    return 0 if comm is None else comm.Get_rank()


get_world_size, get_rank = world_size, rank  # PyTorch's spellings


def _host_array(name, t):
    """The numpy array of tensor `t`; on a GPU ninx has no collective yet (NCCL), so it refuses."""
    if not isinstance(t.data, np.ndarray):
        raise NotImplementedError(f"ninx.distributed works on CPU tensors; {name} is on {t.device}")
    return t.data


def broadcast_parameters(model, root=0):
    """Overwrite every rank's parameters and buffers with rank `root`'s, in place. Call it once after building
    the model (and after loading a checkpoint), before training, so that all ranks start equal.

    Raises ValueError on every rank if the ranks' models differ in names, shapes or dtypes."""
    comm = _comm("broadcast_parameters")
    if comm is None:
        return
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    layout = [(name, tuple(t.shape), str(t.dtype)) for name, t in tensors]
    theirs = comm.bcast(layout, root=root)
    for mine, root_has in zip(layout + [None], theirs + [None]):
        if mine != root_has:
            raise ValueError(f"rank {comm.Get_rank()}'s model does not match rank {root}'s: "
                             f"{mine or 'nothing'} here, {root_has or 'nothing'} on rank {root}")
    for name, t in tensors:
        array = np.ascontiguousarray(_host_array(name, t))
        comm.Bcast(array, root=root)
        t.data[...] = array
        t.bump_version()


def _buckets(params, bucket_bytes):
    """Consecutive runs of `params` of one dtype and about `bucket_bytes` each (a parameter larger than that
    is a bucket of its own)."""
    bucket, size = [], 0
    for p in params:
        if bucket and (p.dtype != bucket[0].dtype or size + p.data.nbytes > bucket_bytes):
            yield bucket
            bucket, size = [], 0
        bucket.append(p)
        size += p.data.nbytes
    if bucket:
        yield bucket


def all_reduce_gradients(model, bucket_bytes=BUCKET_BYTES):
    """Replace every parameter's `.grad` with its average over the ranks; call it after `backward()` and
    before `optimizer.step()`. Gradients travel in contiguous buckets (one `Allreduce` each) in the model's
    parameter order, the same on every rank, so every rank receives the same sums.

    A parameter that got no gradient on some rank counts as zero there; one that got none on any rank keeps
    `.grad = None`, as it would in one process.

    The buckets go after backward, not during it (DDP starts each one as backward fills it): ranks on one node
    reduce the NiN-CIFAR-10's 0.97 M gradients in about 1 ms, well under 1% of its step on 2 cores; MPICH
    advances a non-blocking `Iallreduce` only inside MPI calls (or on a progress thread that would take a
    core from Numba), so starting early would buy nothing measurable here.
    """
    from .tensor import Tensor  # here, not at the top: see the module's docstring
    comm = _comm("all_reduce_gradients")
    if comm is None:
        return
    MPI, n = _state["MPI"], comm.Get_size()
    params = [p for p in model.parameters() if p.requires_grad]
    present = np.array([p.grad is not None for p in params], dtype=np.int32)
    comm.Allreduce(MPI.IN_PLACE, present, op=MPI.SUM)
    params = [p for p, count in zip(params, present) if count]
    for bucket in _buckets(params, bucket_bytes):
        flat = np.concatenate([_host_array("a gradient", p.grad).ravel() if p.grad is not None
                               else np.zeros(p.numel(), p.dtype) for p in bucket])
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        flat /= n
        offset = 0
        for p in bucket:
            average = flat[offset:offset + p.numel()].reshape(p.shape)
            offset += p.numel()
            if p.grad is None:
                p.grad = Tensor(average, p.backend)
            else:
                p.grad.data[...] = average


def all_reduce(array):
    """Sum a numpy array over the ranks, in place, and return it (per-rank totals of loss and accuracy)."""
    comm = _comm("all_reduce")
    if comm is not None:
        comm.Allreduce(_state["MPI"].IN_PLACE, array, op=_state["MPI"].SUM)
    return array


class DistributedSampler:
    """Indices of this rank's shard of `dataset` (anything with a length), as PyTorch's DistributedSampler.

    Each epoch's order (shuffled by `seed` and the epoch given to `set_epoch`, or 0, 1, 2, … without
    shuffle) is padded by repeating its start until it divides evenly among the ranks, or with
    drop_last cut to the largest length that does; rank r takes every num_replicas-th index from position r.
    So the shards of one epoch are disjoint, together cover the dataset, and have equal lengths, and every
    rank, given the same seed and epoch, computes the same order without communicating.

    num_replicas and rank default to `world_size()` and `rank()`.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        self.num_replicas = world_size() if num_replicas is None else num_replicas
        self.rank = get_rank() if rank is None else rank
        if not isinstance(self.num_replicas, int) or self.num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive int, got {self.num_replicas!r}")
        if not isinstance(self.rank, int) or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank must be in [0, {self.num_replicas - 1}], got {self.rank!r}")
        self.dataset_len = len(dataset)
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        if drop_last:
            self.num_samples = self.dataset_len // self.num_replicas
        else:
            self.num_samples = -(-self.dataset_len // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Choose the epoch whose order to shard; call it at the start of every epoch."""
        self.epoch = epoch

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        n = self.dataset_len
        order = np.random.default_rng((self.seed, self.epoch)).permutation(n) if self.shuffle else np.arange(n)
        if self.total_size > n:
            order = np.resize(order, self.total_size)  # repeats the order from its start
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())
