"""ninx.data: the DataLoader, TensorDataset, batch transforms, the bundled digits, and the IDX and CIFAR-10
readers — the readers on small files written here, valid, broken and empty — each reading exactly the
--data-dir it is given."""
import gzip
import os
import pickle
import tarfile

import numpy as np
import pytest

import ninx
from ninx.data import ArrayDataset, DataLoader, Dataset, TensorDataset, load_dataset, locate_dataset, transforms
from ninx.data import cifar, digits, mnist
from ninx.data.digits import load_digits
from ninx.data.download import cache_dir, download
from ninx.data.idx import read_idx


def small_dataset(n=10):
    images = np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2)
    return ArrayDataset(images, np.arange(n) % 3)


# ---- DataLoader ------------------------------------------------------------------------------------------
def test_batches_cover_the_dataset_in_order():
    loader = DataLoader(small_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    images, labels = batches[0]
    assert images.dtype == np.float32 and labels.dtype == np.int64 and images.shape == (4, 1, 2, 2)
    assert images.device == "cpu"
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in batches]), np.arange(10) % 3)


def test_drop_last_skips_the_short_batch():
    loader = DataLoader(small_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(y) for _, y in loader] == [4, 4]


def first_pixels(loader):
    return np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in loader])


def test_shuffle_is_a_permutation_that_changes_each_epoch_and_repeats_with_the_seed():
    loader = DataLoader(small_dataset(10), batch_size=3, shuffle=True, generator=7)
    epoch1, epoch2 = first_pixels(loader), first_pixels(loader)
    np.testing.assert_array_equal(np.sort(epoch1), np.arange(10) * 4)
    assert not np.array_equal(epoch1, epoch2)
    again = DataLoader(small_dataset(10), batch_size=3, shuffle=True, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(first_pixels(again), epoch1)
    np.testing.assert_array_equal(first_pixels(again), epoch2)


def test_restoring_the_generator_state_replays_the_next_epoch():
    loader = DataLoader(small_dataset(10), batch_size=3, shuffle=True, generator=1)
    first_pixels(loader)
    state = loader.generator.bit_generator.state
    expected = first_pixels(loader)
    resumed = DataLoader(small_dataset(10), batch_size=3, shuffle=True, generator=99)
    resumed.generator.bit_generator.state = state
    np.testing.assert_array_equal(first_pixels(resumed), expected)


def test_a_plain_dataset_is_batched_by_stacking_its_items():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((1, 2, 2), i * i, dtype=np.float64), i

    (images, labels), = DataLoader(Squares(), batch_size=5)
    assert images.dtype == np.float32 and images.numpy()[:, 0, 0, 0].tolist() == [0, 1, 4, 9, 16]
    assert labels.tolist() == [0, 1, 2, 3, 4]


def test_a_plain_dataset_refuses_float_labels_instead_of_truncating_them():
    class Soft(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.zeros((1, 2, 2)), [0.7, 1.0][i]

    with pytest.raises(TypeError, match=r"integer class indices, got float64 labels such as \[0.7, 1.0\]"):
        next(iter(DataLoader(Soft(), batch_size=2)))


def test_tensor_dataset_indexes_every_tensor_and_keeps_their_dtypes():
    x = ninx.tensor(np.arange(12, dtype=np.float32).reshape(6, 2))
    y = ninx.tensor([0.5, 1.5, 2.5, 3.5, 4.5, 5.5], dtype="float64")
    ds = TensorDataset(x, y)
    assert len(ds) == 6 and ds.tensors == (x, y)
    first, target = ds[2]
    assert first.tolist() == [4.0, 5.0] and target.item() == 2.5
    batches = list(DataLoader(ds, batch_size=4))
    assert [len(b) for b in batches] == [2, 2]
    (xb, yb), (xc, yc) = batches
    assert xb.dtype == np.float32 and yb.dtype == np.float64  # float targets stay float
    assert yb.tolist() == [0.5, 1.5, 2.5, 3.5] and yc.tolist() == [4.5, 5.5] and xc.shape == (2, 2)
    (alone,), = DataLoader(TensorDataset(np.arange(3)), batch_size=3)
    assert alone.dtype == np.int64 and alone.tolist() == [0, 1, 2]


def test_tensor_dataset_batches_tensors_where_they_live(device):
    x = ninx.tensor(np.arange(10, dtype=np.float32).reshape(5, 2), device=device)
    ds = TensorDataset(x, ninx.tensor(np.arange(5), device=device))
    (xb, yb), = DataLoader(ds, batch_size=5, shuffle=True, generator=3, device=device)
    order = np.random.default_rng(3).permutation(5)
    assert xb.device == x.device and xb.numpy().tolist() == x.numpy()[order].tolist()
    assert yb.numpy().tolist() == order.tolist()


def test_tensor_dataset_needs_tensors_of_one_length():
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(ninx.zeros(3, 2), ninx.zeros(4))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()


def test_array_dataset_checks_its_arrays():
    with pytest.raises(ValueError, match="N, C, H, W"):
        ArrayDataset(np.zeros((3, 4)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="labels must have shape"):
        ArrayDataset(np.zeros((3, 1, 2, 2)), np.zeros(2, dtype=int))
    with pytest.raises(TypeError, match="integers"):
        ArrayDataset(np.zeros((3, 1, 2, 2)), np.zeros(3))


def test_loader_rejects_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(small_dataset(), batch_size=0)


# ---- transforms --------------------------------------------------------------------------------------------
def batch(n=6, c=2, h=5, w=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


def test_normalize_standardises_each_channel():
    x = batch() * np.array([2.0, 5.0], dtype=np.float32).reshape(1, 2, 1, 1) + 3
    mean, std = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
    y = transforms.Normalize(mean, std)(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-5)
    with pytest.raises(ValueError, match="channel"):
        transforms.Normalize([0.0], [1.0])(x)
    with pytest.raises(ValueError, match="positive std"):
        transforms.Normalize([0.0], [0.0])


def test_random_crop_cuts_windows_of_the_padded_images():
    x = batch()
    out = transforms.RandomCrop(5, padding=2)(x, np.random.default_rng(3))
    assert out.shape == x.shape
    top, left = np.random.default_rng(3).integers(0, 5, 6), np.random.default_rng(3).integers(0, 5, 12)[6:]
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(len(x)):
        np.testing.assert_array_equal(out[i], padded[i, :, top[i]:top[i] + 5, left[i]:left[i] + 5])
    np.testing.assert_array_equal(transforms.RandomCrop(5)(x, np.random.default_rng(0)), x)
    with pytest.raises(ValueError, match="larger"):
        transforms.RandomCrop(8, padding=1)(x, np.random.default_rng(0))


def test_random_horizontal_flip_mirrors_the_drawn_images():
    x = batch()
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(1.0)(x, np.random.default_rng(0)), x[..., ::-1])
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(0.0)(x, np.random.default_rng(0)), x)
    out = transforms.RandomHorizontalFlip()(x, np.random.default_rng(5))
    flipped = np.random.default_rng(5).random(len(x)) < 0.5
    np.testing.assert_array_equal(out[flipped], x[flipped][..., ::-1])
    np.testing.assert_array_equal(out[~flipped], x[~flipped])


def test_upscale_repeats_each_pixel_in_a_block():
    x = batch(n=2, h=3, w=4)
    y = transforms.Upscale(3)(x)
    assert y.shape == (2, 2, 9, 12)
    np.testing.assert_array_equal(y[:, :, ::3, ::3], x)
    np.testing.assert_array_equal(y[:, :, 2::3, 1::3], x)
    with pytest.raises(ValueError, match="positive integer"):
        transforms.Upscale(1.5)


def test_compose_applies_in_order_and_the_loader_passes_its_generator():
    pipeline = transforms.Compose([transforms.Upscale(2), transforms.RandomHorizontalFlip(1.0)])
    x = batch(n=1, c=1, h=2, w=2)
    np.testing.assert_array_equal(pipeline(x, np.random.default_rng(0)), x.repeat(2, 2).repeat(2, 3)[..., ::-1])
    crop = transforms.RandomCrop(2, padding=1)
    runs = [first_pixels(DataLoader(small_dataset(), batch_size=4, transform=crop, generator=11)) for _ in range(2)]
    np.testing.assert_array_equal(*runs)


# ---- digits ------------------------------------------------------------------------------------------------
def test_digits_split_is_fixed_stratified_and_disjoint():
    train, test = load_digits()
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape == (1437, 1, 8, 8) and train.images.dtype == np.float32
    assert 0 <= train.images.min() and train.images.max() == 1
    counts = np.bincount(test.labels, minlength=10)
    assert counts.sum() == 360 and counts.min() >= 35 and counts.max() <= 37
    again_train, again_test = load_dataset("digits")
    np.testing.assert_array_equal(again_test.images, test.images)
    np.testing.assert_array_equal(again_train.labels, train.labels)
    rows = {r.tobytes(): None for r in train.images}
    assert sum(r.tobytes() in rows for r in test.images) < 5  # only a few digits are exact duplicates


def test_unknown_dataset_is_named():
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        load_dataset("svhn")


# ---- IDX files -----------------------------------------------------------------------------------------------
def idx_bytes(array, code=0x08):
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data, compress=False):
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)
    return str(path)


def test_idx_reads_raw_and_gzipped_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a", idx_bytes(images))), images)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a.gz", idx_bytes(images), compress=True)), images)
    values = np.linspace(-1, 1, 6).astype(np.float32)
    read = read_idx(write(tmp_path / "f", idx_bytes(values, code=0x0D)))
    np.testing.assert_array_equal(read, values)
    assert read.dtype == np.float32


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-3], "truncated"),
    (lambda b: b + b"\0", "trailing bytes"),
    (lambda b: b"\x08\x03" + b[2:], "not an IDX file"),
    (lambda b: b[:2] + b"\x07" + b[3:], "dtype code 0x07"),
    (lambda b: b[:8], "truncated IDX header"),
    (lambda b: b[:4] + np.full(3, 2**32 - 1, ">u4").tobytes() + b[16:], "truncated"),  # sizes that overflow int64
    (lambda b: b"", "not an IDX file"),
])
def test_idx_rejects_damaged_files_naming_them(tmp_path, damage, message):
    good = idx_bytes(np.zeros((2, 3, 3), dtype=np.uint8))
    path = write(tmp_path / "broken-idx3-ubyte", damage(good))
    with pytest.raises(ValueError, match=message) as error:
        read_idx(path)
    assert "broken-idx3-ubyte" in str(error.value)


def test_idx_rejects_a_truncated_gzip_stream(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((50, 28, 28), dtype=np.uint8)))
    path = write(tmp_path / "cut.gz", data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.gz: broken gzip"):
        read_idx(path)


def write_mnist(folder, n_train=6, n_test=4, labels=None):
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"),
              idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)), compress=True)
        write(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"),
              idx_bytes(np.arange(n, dtype=np.uint8) % 10 if labels is None else labels))


def test_mnist_loads_from_data_dir(tmp_path):
    write_mnist(tmp_path)
    train, test = load_dataset("mnist", str(tmp_path))
    assert train.images.shape == (6, 1, 28, 28) and len(test) == 4
    assert train.images.dtype == np.float32 and 0 <= train.images.min() <= train.images.max() <= 1
    assert train.labels.tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("shape", [(0, 28, 28), (3, 8, 8), (3, 0, 28)])
def test_mnist_rejects_empty_and_wrongly_sized_image_files_naming_them(tmp_path, shape):
    write_mnist(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros(shape, dtype=np.uint8)), compress=True)
    expected = r"train-images-idx3-ubyte.gz: expected 28×28 images \(N, 28, 28\) with N ≥ 1"
    with pytest.raises(ValueError, match=expected):
        load_dataset("mnist", str(tmp_path))


def test_mnist_reads_the_data_dir_as_given_and_never_another_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("NINX_DATA_DIR", str(tmp_path / "cache"))
    write_mnist(tmp_path / "cache" / "fashion-mnist")  # a copy the search would find without --data-dir
    write_mnist(tmp_path / "given", n_train=3)
    (tmp_path / "given" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"--data-dir \S+given lacks t10k-labels-idx1-ubyte\[.gz\] \("):
        load_dataset("fashion-mnist", str(tmp_path / "given"))
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_dataset("fashion-mnist", str(tmp_path / "nowhere"))
    write_mnist(tmp_path / "given", n_train=3)
    assert len(load_dataset("fashion-mnist", str(tmp_path / "given"))[0]) == 3
    assert locate_dataset("fashion-mnist", str(tmp_path / "given"))[0] == str(
        tmp_path / "given" / "train-images-idx3-ubyte.gz")


def test_digits_are_read_from_a_data_dir_only_when_it_holds_them(tmp_path):
    assert locate_dataset("digits") == (digits.PATH,)
    with pytest.raises(FileNotFoundError, match="holds no digits.csv.gz"):
        locate_dataset("digits", str(tmp_path))
    rows = np.loadtxt(digits.PATH, delimiter=",", dtype=np.int64)[:20]
    np.savetxt(tmp_path / "digits.csv.gz", rows, fmt="%d", delimiter=",")
    train, test = load_dataset("digits", str(tmp_path))
    assert len(train) + len(test) == 20
    np.savetxt(tmp_path / "digits.csv.gz", rows[:, :10], fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="digits.csv.gz: expected lines of 64 pixel values"):
        load_dataset("digits", str(tmp_path))


def test_mnist_rejects_mismatched_counts_and_labels(tmp_path):
    write_mnist(tmp_path / "count", labels=np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match="holds 6 images but .* 5 labels"):
        load_dataset("mnist", str(tmp_path / "count"))
    write_mnist(tmp_path / "label", labels=np.array([0, 1, 2, 3, 4, 12], dtype=np.uint8))
    with pytest.raises(ValueError, match="labels must be 0–9"):
        load_dataset("mnist", str(tmp_path / "label"))


def test_missing_mnist_without_network_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NINX_DATA_DIR", str(tmp_path / "cache"))

    def offline(url, path, md5, timeout=60):
        raise OSError("network unreachable")

    monkeypatch.setattr(mnist, "download", offline)
    with pytest.raises(FileNotFoundError, match="--data-dir") as error:
        load_dataset("mnist")
    assert "train-images-idx3-ubyte" in str(error.value) and "network unreachable" in str(error.value)


def test_cache_dir_follows_the_environment(monkeypatch):
    monkeypatch.setenv("NINX_DATA_DIR", "/data/ninx")
    assert cache_dir() == "/data/ninx"
    monkeypatch.delenv("NINX_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache_dir() == os.path.join("/xdg", "ninx")


def test_download_keeps_only_files_with_the_right_checksum(tmp_path):
    source = write(tmp_path / "source.bin", b"payload")
    target = tmp_path / "cache" / "file.bin"
    with pytest.raises(OSError, match="MD5"):
        download("file://" + source, str(target), "0" * 32)
    assert not target.exists() and os.listdir(tmp_path / "cache") == []
    download("file://" + source, str(target), "321c3cf486ed509164edec1e1981fec8")
    assert target.read_bytes() == b"payload"


# ---- CIFAR-10 ------------------------------------------------------------------------------------------------
def cifar_batch(n, seed=0):
    """A batch pickled as the official archive's are (protocol 3 stores bytes plainly, as Python 2's did)."""
    rng = np.random.default_rng(seed)
    return pickle.dumps({b"batch_label": b"test", b"labels": [int(v) for v in rng.integers(0, 10, n)],
                         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"filenames": [b"x.png"] * n}, protocol=3)


def test_cifar_batch_is_read_with_the_old_numpy_module_name_too():
    data = cifar_batch(3)
    images, labels = cifar.parse_batch(data, "batch")
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert b"numpy._core.multiarray" in data or b"numpy.core.multiarray" in data
    legacy = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # as the 2009 archive has it
    np.testing.assert_array_equal(cifar.parse_batch(legacy, "batch")[0], images)


class RunsShell:
    def __reduce__(self):
        return os.system, ("echo owned > owned.txt",)


@pytest.mark.parametrize("payload", [RunsShell(), {b"data": RunsShell()}, {b"data": [eval]}])
def test_cifar_reader_refuses_pickled_code(tmp_path, monkeypatch, payload):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="refusing to load"):
        cifar.parse_batch(pickle.dumps(payload, protocol=3), "evil_batch")
    assert not (tmp_path / "owned.txt").exists()


@pytest.mark.parametrize("payload, message", [
    ([1, 2], "holds a list"),
    ({b"data": np.zeros((2, 3072), dtype=np.float32), b"labels": [0, 1]}, "uint8"),
    ({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0]}, "labels"),
    ({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 10]}, "labels"),
])
def test_cifar_reader_checks_the_batch_contents(payload, message):
    with pytest.raises(ValueError, match=message):
        cifar.parse_batch(pickle.dumps(payload, protocol=3), "batch")


def test_cifar_reader_rejects_an_empty_batch():
    empty = pickle.dumps({b"data": np.zeros((0, 3072), dtype=np.uint8), b"labels": []}, protocol=3)
    with pytest.raises(ValueError, match="empty_batch: holds no images"):
        cifar.parse_batch(empty, "empty_batch")


def test_cifar_reads_the_data_dir_as_given(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--data-dir \S+ holds no cifar-10-batches-py/ batches"):
        load_dataset("cifar10", str(tmp_path))


def test_cifar_reader_rejects_a_truncated_pickle():
    with pytest.raises(ValueError, match="cut_batch: not a CIFAR-10 batch"):
        cifar.parse_batch(cifar_batch(2)[:-40], "cut_batch")


def write_cifar(folder):
    folder.mkdir(parents=True)
    for i, name in enumerate(cifar.TRAIN_BATCHES + cifar.TEST_BATCHES):
        (folder / name).write_bytes(cifar_batch(2, seed=i))


def test_cifar_loads_from_a_folder_and_from_the_archive(tmp_path):
    write_cifar(tmp_path / "dir" / cifar.FOLDER)
    train, test = load_dataset("cifar10", str(tmp_path / "dir"))
    assert train.images.shape == (10, 3, 32, 32) and len(test) == 2 and train.images.dtype == np.float32
    (tmp_path / "tar").mkdir()
    with tarfile.open(tmp_path / "tar" / cifar.ARCHIVE, "w:gz") as archive:
        archive.add(tmp_path / "dir" / cifar.FOLDER, arcname=cifar.FOLDER)
    train_tar, test_tar = load_dataset("cifar10", str(tmp_path / "tar"))
    np.testing.assert_array_equal(train_tar.images, train.images)
    np.testing.assert_array_equal(test_tar.labels, test.labels)
