"""ninx.distributed: DistributedSampler and the thread share in this process; data-parallel training itself
under `mpiexec -n 2` (tests/mpi_training_loop.py, a user's own loop), each launch bounded in time."""
import json
import os
import shutil
import signal
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest

from ninx import distributed
from ninx.data import ArrayDataset, DataLoader
from ninx.distributed import DistributedSampler, threads_per_rank

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOP = os.path.join(REPO, "tests", "mpi_training_loop.py")
BATCH, EPOCHS = 8, 2


# ---- DistributedSampler, without MPI ----------------------------------------------------------------------
def shards(length, num_replicas, epoch=0, **options):
    samplers = [DistributedSampler(range(length), num_replicas, r, **options) for r in range(num_replicas)]
    for s in samplers:
        s.set_epoch(epoch)
    return [list(s) for s in samplers]


@pytest.mark.parametrize("length,num_replicas", [(96, 2), (10, 3), (11, 4), (5, 1), (2, 3)])
def test_shards_cover_the_epoch_padded_by_repeating_its_start(length, num_replicas):
    parts = shards(length, num_replicas)
    per_rank = -(-length // num_replicas)
    assert [len(p) for p in parts] == [per_rank] * num_replicas
    # rank r holds positions r, r + n, r + 2n, … of the padded order: interleave the shards back into it
    order = [parts[i % num_replicas][i // num_replicas] for i in range(per_rank * num_replicas)]
    assert sorted(order[:length]) == list(range(length))
    assert order[length:] == order[:len(order) - length]
    if length % num_replicas == 0:
        assert len(set().union(*map(set, parts))) == length  # disjoint


def test_drop_last_cuts_to_equal_disjoint_shards():
    parts = shards(11, 4, drop_last=True)
    assert [len(p) for p in parts] == [2] * 4
    assert len(set().union(*map(set, parts))) == 8


def test_each_epoch_is_a_new_order_that_every_rank_computes_alike():
    assert shards(50, 2, epoch=0) != shards(50, 2, epoch=1)
    assert shards(50, 2, epoch=3) == shards(50, 2, epoch=3)
    assert shards(50, 2, epoch=3, seed=1) != shards(50, 2, epoch=3)
    assert shards(7, 2, epoch=5, shuffle=False) == [[0, 2, 4, 6], [1, 3, 5, 0]]


def test_sampler_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank must be in"):
        DistributedSampler(range(10), num_replicas=2, rank=2)


def test_one_process_is_a_world_of_one():
    distributed.init()
    assert (distributed.world_size(), distributed.rank()) == (1, 0)
    sampler = DistributedSampler(range(6), shuffle=False)
    assert (sampler.num_replicas, sampler.rank, list(sampler)) == (1, 0, list(range(6)))
    assert distributed.abort(1) is None  # nothing to abort: the caller exits as it would anyway


def test_loader_batches_in_the_sampler_order():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    dataset = ArrayDataset(images, np.arange(10))
    loader = DataLoader(dataset, batch_size=2, sampler=DistributedSampler(dataset, 2, 1, shuffle=False))
    assert len(loader) == 3
    assert [labels.tolist() for _, labels in loader] == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(dataset, shuffle=True, sampler=DistributedSampler(dataset, 1, 0))


def test_ranks_on_one_node_share_its_cores():
    assert threads_per_rank({}, cores=8) is None
    assert threads_per_rank({"MPI_LOCALNRANKS": "2"}, cores=8) == 4
    assert threads_per_rank({"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}, cores=2) == 1
    assert threads_per_rank({"NUMBA_NUM_THREADS": "5", "MPI_LOCALNRANKS": "2"}, cores=8) == 5


# ---- under mpiexec ------------------------------------------------------------------------------------------
def mpiexec():
    """The mpiexec installed beside this Python (the `mpich` wheel puts it there), else the one on PATH."""
    beside = os.path.join(sys.prefix, "bin", "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(find_spec("mpi4py") is None or mpiexec() is None,
                               reason="mpi4py or mpiexec is not installed (pip install 'ninx[mpi]')")


def launch(args, ranks=2, timeout=120):
    """Run the training loop (under mpiexec unless ranks is None); (exit status, output). A run still
    going after `timeout` seconds is killed with its whole process group and fails the test as a hang."""
    command = ([mpiexec(), "-n", str(ranks)] if ranks else []) + [sys.executable, LOOP] + list(args)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{' '.join(command)} still running after {timeout} s:\n{output}")
    return process.returncode, output


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Per-rank reports of a 2-rank run with batch BATCH and of a plain 1-process run with batch 2·BATCH."""
    two, one = tmp_path_factory.mktemp("two_ranks"), tmp_path_factory.mktemp("one_rank")
    for folder, ranks, batch in [(two, 2, BATCH), (one, None, 2 * BATCH)]:
        status, output = launch(["train", str(folder), str(batch), str(EPOCHS)], ranks)
        assert status == 0, output
    read = lambda folder, r: json.loads((folder / f"rank{r}.json").read_text())  # noqa: E731
    return [read(two, 0), read(two, 1)], read(one, 0)


@needs_mpi
def test_ranks_hold_bit_identical_parameters_and_their_own_batchnorm_statistics(runs):
    (rank0, rank1), _ = runs
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["parameters"] == rank1["parameters"]
    assert rank0["bn_parameters"] == rank1["bn_parameters"]
    assert rank0["bn_running_mean"] != rank1["bn_running_mean"]  # each rank normalised its own batches
    assert rank0["unused_grad_is_none"] and rank1["unused_grad_is_none"]


@needs_mpi
def test_two_ranks_with_batch_b_follow_one_process_with_batch_2b(runs):
    (rank0, rank1), alone = runs
    assert (alone["world_size"], alone["mpi_imported"]) == (1, False)
    assert len(rank0["losses"]) == len(alone["losses"]) == EPOCHS * 96 // (2 * BATCH)
    assert rank0["losses"] == rank1["losses"]
    np.testing.assert_allclose(rank0["losses"], alone["losses"], rtol=1e-4)
    assert alone["losses"][-1] < alone["losses"][0]


@needs_mpi
def test_each_rank_gets_its_share_of_the_cores(runs):
    (rank0, rank1), _ = runs
    assert rank0["threads"] == rank1["threads"] == max(1, os.cpu_count() // 2)


@needs_mpi
def test_a_rank_that_exits_ends_the_run_with_an_error():
    status, output = launch(["die"], timeout=60)
    assert status != 0, output
    assert "finished all epochs" not in output


@needs_mpi
def test_an_uncaught_exception_in_one_rank_aborts_every_rank():
    status, output = launch(["raise"], timeout=60)
    assert status != 0, output
    assert "rank 1 fails on purpose" in output and "aborting all 2 ranks" in output
    assert "finished all epochs" not in output


@needs_mpi
def test_abort_ends_every_rank_with_its_status():
    status, output = launch(["abort"], timeout=60)
    assert status == 3, output
    assert "rank 1 stops on purpose" in output and "finished all epochs" not in output
