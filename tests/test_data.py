"""The data layer: formats, splits, scaling, labels, and the errors users see."""
from __future__ import annotations

import time

import numpy as np
import pytest

import fakedata
import gencomp_utils as gu
from gencomp_utils import data


# ------------------------------------------------------------------ splits and arguments

@pytest.mark.parametrize("split,n,expected", [
    ("test", 10, range(10)),
    ("test[:8]", 10, range(8)),
    ("test[8:]", 10, range(8, 10)),
    ("train[:10%]", 200, range(20)),
    ("train[-25%:]", 200, range(150, 200)),
    ("test[2:5]", 10, range(2, 5)),
])
def test_split_slices(split, n, expected):
    assert list(data.slice_indices(split, n)) == list(expected)


@pytest.mark.parametrize("bad", ["tran", "test[:x]", "test[1:2:3]", "train[:150%]", ""])
def test_bad_split_is_rejected_with_examples(bad):
    with pytest.raises(ValueError, match="test\\[:8000\\]|percentage"):
        data.slice_indices(bad, 100)


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(ValueError, match="mnist, cifar10, celeba"):
        gu.load_dataset("imagenet")


def test_unknown_attribute_lists_valid_ones():
    with pytest.raises(ValueError, match="Did you mean 'Male'.*Smiling"):
        gu.load_dataset("celeba", attribute="male")


@pytest.mark.parametrize("size", [0, 7, 73, 128, (64, 100), "big", 28.5, (28,)])
def test_bad_image_size(size):
    with pytest.raises(ValueError, match="at most|8 to 72"):
        gu.load_dataset("mnist", "test", image_size=size)


def test_split_the_dataset_lacks():
    with pytest.raises(ValueError, match="has no 'validation' split"):
        gu.load_dataset("mnist", "validation")


def test_class_names():
    assert gu.class_names("mnist") == [str(d) for d in range(10)]
    assert gu.class_names("cifar10")[3] == "cat"
    assert gu.class_names("celeba") == ["female", "male"]
    assert gu.class_names("celeba", "Smiling") == ["not Smiling", "Smiling"]
    assert gu.class_names("celeba", ["Smiling", "Young"]) == ["Smiling", "Young"]


# ------------------------------------------------------------------ MNIST formats

def _mnist_arrays(name="mnist", split="test", **kw):
    return gu.load_numpy(name, split, batch_size=64, **kw)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files(data_dir, gz):
    fakedata.write_mnist_idx(data_dir / "mnist", n=50, gz=gz)
    x, y = _mnist_arrays()
    ref_x, ref_y = fakedata.digits(50)
    assert x.shape == (50, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], ref_x / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y, ref_y)


def test_mnist_keras_npz_both_splits(data_dir):
    fakedata.write_mnist_npz(data_dir / "mnist.npz", n_train=60, n_test=40)
    assert _mnist_arrays(split="train")[0].shape[0] == 60
    assert _mnist_arrays(split="test")[0].shape[0] == 40


def test_mnist_value_range_and_resize(data_dir):
    fakedata.write_mnist_idx(data_dir / "mnist", n=20)
    x, _ = _mnist_arrays(value_range=(-1, 1), image_size=32)
    assert x.shape == (20, 32, 32, 1)
    assert x.min() >= -1.0 - 1e-6 and x.max() <= 1.0 + 1e-6
    assert x.min() < -0.9 and x.max() > 0.9


def test_mnist_train_absent_says_which_files(data_dir):
    fakedata.write_mnist_idx(data_dir / "mnist", n=20)
    with pytest.raises(gu.DataNotFoundError,
                       match="train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz.*mnist.npz"):
        gu.load_dataset("mnist", "train", download=False)


def test_missing_data_download_fails_fast(data_dir, monkeypatch):
    """Offline, the download attempt fails in well under a minute (no retry loop), and the
    message still says which files to put where."""
    monkeypatch.setattr(data, "MNIST_URL", "http://127.0.0.1:9/mnist.npz")
    t0 = time.perf_counter()
    with pytest.raises(gu.DataNotFoundError, match="(?s)t10k-images-idx3-ubyte.gz.*download .* failed"):
        gu.load_dataset("mnist", "test", download=True)
    assert time.perf_counter() - t0 < 30


def test_truncated_gzip_is_named(data_dir):
    folder = fakedata.write_mnist_idx(data_dir / "mnist", n=50)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(gu.DataError, match="t10k-images-idx3-ubyte.gz.*truncated"):
        gu.load_dataset("mnist", "test")


def test_short_idx_is_named(data_dir):
    folder = fakedata.write_mnist_idx(data_dir / "mnist", n=50, gz=False)
    path = folder / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(gu.DataError, match="t10k-labels-idx1-ubyte is truncated"):
        gu.load_dataset("mnist", "test")


def test_damaged_npz_is_named(data_dir):
    (data_dir / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(gu.DataError, match="mnist.npz"):
        gu.load_dataset("mnist", "test")


# ------------------------------------------------------------------ CIFAR-10 formats

def test_cifar_npz_is_the_test_split(data_dir):
    fakedata.write_cifar_npz(data_dir / "cifar10" / "cifar10_subset.npz", n=30)
    x, y = gu.load_numpy("cifar10", "test")
    ref_x, ref_y = fakedata.colour_images(30)
    np.testing.assert_allclose(x, ref_x / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y, ref_y)
    with pytest.raises(gu.DataNotFoundError, match="cifar-10-batches-py.*cifar10_train.npz"):
        gu.load_dataset("cifar10", "train", download=False)


def test_cifar_python_batches(data_dir):
    fakedata.write_cifar_batches(data_dir / "cifar10" / "cifar-10-batches-py", per_batch=8)
    xtr, ytr = gu.load_numpy("cifar10", "train")
    xte, _ = gu.load_numpy("cifar10", "test")
    assert xtr.shape == (40, 32, 32, 3) and xte.shape == (8, 32, 32, 3)
    ref_x, ref_y = fakedata.colour_images(8, seed=0)
    np.testing.assert_allclose(xtr[:8], ref_x / 255.0, atol=1e-6)  # HWC order preserved
    np.testing.assert_array_equal(ytr[:8], ref_y)


def test_cifar_archive_must_be_the_official_one(data_dir):
    fakedata.write_cifar_targz(data_dir / "cifar10" / "cifar-10-python.tar.gz")
    with pytest.raises(gu.DataError, match="not the official CIFAR-10 archive"):
        gu.load_dataset("cifar10", "test")


def test_cifar_archive_unpacked_into_cache_when_checksum_matches(data_dir, monkeypatch,
                                                                capsys):
    archive = fakedata.write_cifar_targz(data_dir / "cifar10" / "cifar-10-python.tar.gz", per_batch=6)
    monkeypatch.setattr(data, "CIFAR10_MD5", data._md5(archive))
    x, _ = gu.load_numpy("cifar10", "train")
    assert x.shape == (30, 32, 32, 3)
    unpacked = gu.cache_dir("cifar10") / "cifar-10-batches-py"
    assert (unpacked / "test_batch").is_file()
    assert [p.name for p in gu.cache_dir("cifar10").iterdir()] == ["cifar-10-batches-py"]
    # The unpacked copy cut short (a disconnect): unpacked again from the archive, said.
    batch = unpacked / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:500])
    again, _ = gu.load_numpy("cifar10", "train")
    assert "unpacking it again" in capsys.readouterr().out
    np.testing.assert_array_equal(again, x)


def test_damaged_cifar_batch_is_named(data_dir):
    folder = fakedata.write_cifar_batches(data_dir / "cifar10" / "cifar-10-batches-py", per_batch=4)
    (folder / "test_batch").write_bytes(b"\x80\x04garbage")
    with pytest.raises(gu.DataError, match="test_batch"):
        gu.load_dataset("cifar10", "test")


# ------------------------------------------------------------------ CelebA formats

@pytest.mark.parametrize("kaggle", [False, True])
def test_celeba_layouts_and_male_label(data_dir, kaggle):
    fakedata.write_celeba(data_dir / "celeba", n=20, kaggle=kaggle)
    x, y = gu.load_numpy("celeba", "train", batch_size=8)
    assert x.shape == (20, 64, 64, 3)
    np.testing.assert_array_equal(y, [1 if k % 5 in (0, 2) else 0 for k in range(20)])
    # The generated males have a dark band at the chin: the label matches the picture.
    chin = x[:, 53:61, 24:40].mean(axis=(1, 2, 3))
    assert chin[y == 1].max() < chin[y == 0].min()


def test_celeba_any_resolution_and_size(data_dir):
    fakedata.write_celeba(data_dir / "celeba", n=6, size=(218, 178))
    x, _ = gu.load_numpy("celeba", "train", image_size=(40, 48), value_range=(-1, 1))
    assert x.shape == (6, 40, 48, 3) and x.min() >= -1 and x.max() <= 1


def test_celeba_is_streamed_from_file_paths(data_dir):
    fakedata.write_celeba(data_dir / "celeba", n=10)
    src = data.find_source("celeba", "train[:4]")
    assert src.images is None and len(src.files) == 4
    assert all(f.endswith(".jpg") for f in src.files)


def test_celeba_cache_file_holds_the_decoded_images_and_shuffles_by_index(data_dir, tmp_path):
    fakedata.write_celeba(data_dir / "celeba", n=24)
    plain = gu.load_dataset("celeba", "train", 16, batch_size=8, shuffle=False)
    x0 = np.concatenate([x.numpy() for x, _ in plain])
    cached = gu.load_dataset("celeba", "train", 16, batch_size=8, shuffle=False, cache=True)
    (file,) = (tmp_path / "cache" / "tfdata").glob("celeba_*.npy")
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in cached]), x0)
    assert np.load(file).shape == (24, 16, 16, 3)  # a plain .npy file of uint8 images

    def epoch(seed):
        ds = gu.load_dataset("celeba", "train", 16, batch_size=8, seed=seed, cache=True)
        batches = list(ds)
        return (np.concatenate([x.numpy() for x, _ in batches]),
                np.concatenate([y.numpy() for _, y in batches]))

    x1, y1 = epoch(1)
    x2, _ = epoch(2)
    assert not np.array_equal(x1, x0) and not np.array_equal(x1, x2)  # shuffled, per seed
    order = [int(np.flatnonzero((x0 == img).all(axis=(1, 2, 3)))[0]) for img in x1]
    assert sorted(order) == list(range(24))                            # a permutation
    _, y0 = gu.load_numpy("celeba", "train", image_size=16)
    np.testing.assert_array_equal(y1, y0[order])                      # labels follow images
    np.testing.assert_array_equal(epoch(1)[0], x1)                   # same seed, same order


def test_celeba_cache_file_is_written_whole_or_not_at_all(tmp_path):
    import tensorflow as tf

    def images():
        for i in range(5):
            if i == 3:
                raise RuntimeError("interrupted")
            yield np.full((4, 4, 3), i, np.uint8)

    ds = tf.data.Dataset.from_generator(images, output_signature=tf.TensorSpec((4, 4, 3),
                                                                               tf.uint8))
    path = tmp_path / "celeba_x.npy"
    with pytest.raises(Exception, match="interrupted"):
        data._write_decoded(path, ds, (5, 4, 4, 3))
    assert list(tmp_path.iterdir()) == []


def test_celeba_multi_attribute_labels(data_dir):
    fakedata.write_celeba(data_dir / "celeba", n=10)
    _, y = gu.load_numpy("celeba", "train", attribute=["Male", "Smiling"])
    assert y.shape == (10, 2) and set(np.unique(y)) <= {0, 1}


def test_celeba_official_partition_by_file_number(data_dir):
    fakedata.write_celeba(data_dir / "celeba", n=3, first=182_638)  # first test image
    assert len(data.find_source("celeba", "test")) == 3
    with pytest.raises(gu.DataNotFoundError, match="none of them in the train split"):
        data.find_source("celeba", "train")


def test_celeba_truncated_jpeg_is_named(data_dir):
    fakedata.write_celeba(data_dir / "celeba", n=4)
    bad = data_dir / "celeba" / "img_align_celeba" / "000003.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match="truncated JPEG.*000003.jpg"):
        gu.load_numpy("celeba", "train", batch_size=2)


def test_celeba_missing_says_how_to_get_it(data_dir):
    with pytest.raises(gu.DataNotFoundError, match="Kaggle.*list_attr_celeba.txt"):
        gu.load_dataset("celeba")


def test_damaged_attribute_file_is_named(data_dir):
    fakedata.write_celeba(data_dir / "celeba", n=4)
    (data_dir / "celeba" / "list_attr_celeba.txt").write_text("4\r\nMale Young\r\n000001.jpg 1\r\n")
    with pytest.raises(gu.DataError, match="list_attr_celeba.txt"):
        gu.load_dataset("celeba")


# ------------------------------------------------------------------ pipeline behaviour

def test_shuffle_is_seeded_and_train_only_by_default(data_dir):
    fakedata.write_mnist_npz(data_dir / "mnist.npz", n_train=60, n_test=40)
    first = lambda **kw: next(iter(gu.load_dataset("mnist", batch_size=60, **kw)))[1].numpy()
    a, b, c = first(seed=1), first(seed=1), first(seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sorted(a) == sorted(fakedata.digits(60, seed=1)[1])
    test_labels = next(iter(gu.load_dataset("mnist", "test", batch_size=40)))[1].numpy()
    np.testing.assert_array_equal(test_labels, fakedata.digits(40, seed=2)[1])


def test_skip_and_take_leave_out_images_of_the_shuffled_order(data_dir, tmp_path):
    fakedata.write_mnist_npz(data_dir / "mnist.npz", n_train=60, n_test=40)
    fakedata.write_celeba(data_dir / "celeba", n=24)

    def images(name, **kw):
        ds = gu.load_dataset(name, "train", 16 if name == "celeba" else None, batch_size=8,
                             seed=5, **kw)
        return np.concatenate([x.numpy() for x, _ in ds])

    for name, cache in (("mnist", False), ("celeba", False), ("celeba", True)):
        whole = images(name, cache=cache)
        np.testing.assert_array_equal(images(name, cache=cache, skip=16), whole[16:])
        np.testing.assert_array_equal(images(name, cache=cache, skip=8, take=16), whole[8:24])
    with pytest.raises(ValueError, match="cannot be negative"):
        gu.load_dataset("mnist", skip=-8)
    with pytest.raises(ValueError, match="repeat"):
        gu.load_dataset("mnist", take=8, repeat=True)


def test_default_splits_when_train_is_absent(data_dir):
    fakedata.write_mnist_idx(data_dir / "mnist", n=100)
    s = gu.default_splits("mnist")
    assert (s.train, s.eval) == ("test[:80]", "test[80:]")
    assert "train split is absent" in s.note


def test_default_splits_with_both(data_dir):
    fakedata.write_mnist_npz(data_dir / "mnist.npz")
    assert (gu.default_splits("mnist").train, gu.default_splits("mnist").eval) == ("train", "test")


def test_describe_data_reports_found_and_missing(data_dir):
    fakedata.write_mnist_idx(data_dir / "mnist", n=30)
    rows = {(r["dataset"], r["split"]): r for r in data.describe_data()}
    assert rows[("mnist", "test")]["images"] == 30
    assert "train-images-idx3-ubyte.gz" in rows[("mnist", "train")]["missing"]
    assert "Kaggle" in rows[("celeba", "train")]["missing"]


def test_data_folder_may_be_read_only(data_dir):
    fakedata.write_mnist_idx(data_dir / "mnist", n=20)
    fakedata.write_celeba(data_dir / "celeba", n=4)
    for p in sorted(data_dir.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    data_dir.chmod(0o555)
    try:
        assert gu.load_numpy("mnist", "test")[0].shape[0] == 20
        assert gu.load_numpy("celeba", "train")[0].shape[0] == 4
    finally:
        for p in [data_dir, *data_dir.rglob("*")]:
            p.chmod(0o755)


# ------------------------------------------------------------------ the shared real sample

@pytest.mark.shared_data
def test_shared_mnist_facts():
    src = data.find_source("mnist", "test", download=False)
    assert len(src) == 10_000
    assert np.bincount(src.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert not gu.available("mnist", "train")  # labels only, no training images


@pytest.mark.shared_data
def test_shared_cifar_facts():
    x, y = gu.load_numpy("cifar10", "test[:10]")
    assert y.tolist() == list(range(10))
    assert len(data.find_source("cifar10", "test", download=False)) == 5000


@pytest.mark.shared_data
def test_shared_celeba_facts():
    src = data.find_source("celeba", "train")
    assert len(src) == 5000
    male = src.labels[:, gu.CELEBA_ATTRIBUTES.index("Male")] > 0
    assert round(100 * male.mean(), 1) == 41.7
    x, y = next(iter(gu.load_dataset("celeba", "train", batch_size=16, shuffle=False)))
    assert x.shape == (16, 64, 64, 3)
    np.testing.assert_array_equal(y.numpy(), male[:16].astype(int))


def test_a_cut_short_celeba_cache_file_is_decoded_again(data_dir, tmp_path, capsys):
    fakedata.write_celeba(data_dir / "celeba", n=12)
    first = np.concatenate([x.numpy() for x, _ in gu.load_dataset(
        "celeba", "train", 16, batch_size=4, shuffle=False, cache=True)])
    (file,) = (tmp_path / "cache" / "tfdata").glob("celeba_*.npy")
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])  # a disconnect mid-write
    again = np.concatenate([x.numpy() for x, _ in gu.load_dataset(
        "celeba", "train", 16, batch_size=4, shuffle=False, cache=True)])
    assert "cannot be used" in capsys.readouterr().out
    np.testing.assert_array_equal(again, first)
    assert np.load(file).shape == (12, 16, 16, 3)
