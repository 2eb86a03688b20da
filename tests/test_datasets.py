"""cynet.datasets: IDX files, MNIST/Fashion-MNIST loaders, text pipeline, tabular sets.

Nothing here touches the network: every download goes through a monkeypatched `urlopen`.
"""
import gzip
import hashlib
import io
import os
import socket
import struct
import sys
import threading
import tracemalloc
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cynet.datasets import DatasetNotFoundError, _files, fashion_mnist, idx, mnist, tabular, text
from cynet.utils._files import DirectoryNotFileError, NotARegularFileError

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# Published md5 sums (../shared/data/README.md, Zalando's README), written out independently of the module.
MNIST_T10K_MD5 = {"t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                  "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}


def md5(data):
    return hashlib.md5(data).hexdigest()


def idx_bytes(code, shape, payload):
    """An IDX file built by hand: 00 00 code ndim, big-endian uint32 dims, payload."""
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + payload


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean HOME and no CYNET_DATA_DIR; any attempt to reach the network fails the test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CYNET_DATA_DIR", raising=False)

    def no_network(url, timeout=None):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(_files, "urlopen", no_network)
    return tmp_path


# ---------------------------------------------------------------------------------------------------
# Real files in $CYNET_DATA_DIR (../shared/data)

SHARED_DATA = os.environ.get("CYNET_DATA_DIR")  # read before any test's monkeypatch


def _shared(*parts):
    root = SHARED_DATA
    if not root:
        pytest.skip("CYNET_DATA_DIR is not set (point it at ../shared/data)")
    p = Path(root, *parts)
    if not p.exists():
        pytest.skip(f"{p} is absent")
    return p


def test_real_mnist_files_match_published_md5():
    d = _shared("mnist")
    for name, digest in MNIST_T10K_MD5.items():
        assert md5((d / name).read_bytes()) == digest
        assert mnist.MD5[name] == digest


def test_real_mnist_test_split():
    d = _shared("mnist")
    (x_train, y_train), (x_test, y_test) = mnist.load_test_split()
    assert x_train.shape == (8000, 28, 28) and y_train.shape == (8000,)
    assert x_test.shape == (2000, 28, 28) and y_test.shape == (2000,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
    # Decode the IDX files independently: 16- and 8-byte headers, then raw uint8.
    images = np.frombuffer(gzip.decompress((d / FILES[2]).read_bytes())[16:], np.uint8).reshape(10000, 28, 28)
    labels = np.frombuffer(gzip.decompress((d / FILES[3]).read_bytes())[8:], np.uint8)
    np.testing.assert_array_equal(x_train, images[:8000])
    np.testing.assert_array_equal(x_test, images[8000:])
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), labels)
    # Published facts about the MNIST test set: first labels and the per-digit counts.
    np.testing.assert_array_equal(labels[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(np.bincount(labels, minlength=10),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert x_train.min() == 0 and x_train.max() == 255
    # The same split through load_data, only when asked; other sizes; the directory passed explicitly.
    (a, b), (c, e) = mnist.load_data(test_split_only=True)
    np.testing.assert_array_equal(a, x_train)
    np.testing.assert_array_equal(e, y_test)
    (a, b), (c, e) = mnist.load_test_split(path=d, n_train=9000)
    assert a.shape == (9000, 28, 28) and c.shape == (1000, 28, 28)
    np.testing.assert_array_equal(c, images[9000:])


def test_real_mnist_load_data_does_not_fall_back_to_test_split(env, monkeypatch):
    d = _shared("mnist")
    monkeypatch.setenv("CYNET_DATA_DIR", str(d.parent))
    assert not mnist.training_files_present()
    with pytest.raises(DatasetNotFoundError, match="load_test_split"):
        mnist.load_data(download=False)


def test_real_text_files():
    d = _shared("text")
    s = text.tiny_shakespeare(download=False)
    assert len(s) == 1115394
    assert md5(s.encode("utf-8")) == "6fb458f1232090904fb40fe944165e91"
    assert text.find_text_file("rnn_wiki.txt", download=False) == d / "rnn_wiki.txt"
    vocab = text.CharVocabulary.from_text(s)
    assert vocab.size == 65
    assert vocab.decode(vocab.encode(s[:5000])) == s[:5000]


# ---------------------------------------------------------------------------------------------------
# IDX reader and writer

IDX_TYPES = [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
             (0x0D, np.float32), (0x0E, np.float64)]


@pytest.mark.parametrize("code,dtype", IDX_TYPES, ids=[np.dtype(t).name for _, t in IDX_TYPES])
@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gz"])
def test_idx_round_trip_all_dtypes(tmp_path, code, dtype, compressed):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 2)) * 100).astype(dtype)
    expected = idx_bytes(code, a.shape, a.astype(np.dtype(dtype).newbyteorder(">")).tobytes())
    p = tmp_path / ("a.idx.gz" if compressed else "a.idx")
    idx.write_idx(p, a)
    data = p.read_bytes()
    assert (gzip.decompress(data) if compressed else data) == expected
    for src in (p, str(p), io.BytesIO(data)):
        b = idx.read_idx(src)
        assert b.dtype == np.dtype(dtype) and b.dtype.isnative
        np.testing.assert_array_equal(b, a)


def test_idx_hand_built_big_endian():
    b = idx.read_idx(io.BytesIO(idx_bytes(0x0B, (2,), b"\x01\x02\xff\xfe")))
    np.testing.assert_array_equal(b, [0x0102, -2])
    b = idx.read_idx(io.BytesIO(idx_bytes(0x0D, (1, 1), b"\x3f\x80\x00\x00")))
    assert b.shape == (1, 1) and b[0, 0] == 1.0
    b = idx.read_idx(io.BytesIO(idx_bytes(0x08, (2, 0), b"")))
    assert b.shape == (2, 0)
    assert idx.read_idx(io.BytesIO(idx_bytes(0x08, (3,), b"\x01\x02\x03"))).flags.writeable


class Unseekable(io.RawIOBase):
    """A pipe-like stream: read only, no seek/tell."""

    def __init__(self, data):
        self._b = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buf):
        data = self._b.read(min(len(buf), 3))  # short reads on purpose
        buf[:len(data)] = data
        return len(data)


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gz"])
def test_idx_unseekable_stream(compressed):
    data = idx_bytes(0x0C, (2, 2), struct.pack(">4i", 1, -2, 3, 1 << 30))
    if compressed:
        data = gzip.compress(data)
    np.testing.assert_array_equal(idx.read_idx(Unseekable(data)), [[1, -2], [3, 1 << 30]])


BAD_IDX = {
    "bad magic": (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "two zero bytes"),
    "unknown type": (idx_bytes(0x0A, (1,), b"\x00"), "unknown IDX type code 0x0A"),
    "ndim 0": (b"\x00\x00\x08\x00", "0 dimensions"),
    "ndim 5": (idx_bytes(0x08, (1, 1, 1, 1, 1), b"\x00"), "5 dimensions"),
    "short magic": (b"\x00\x00\x08", "magic number needs 4 bytes"),
    "short dims": (b"\x00\x00\x08\x03" + struct.pack(">I", 1), "dimension sizes needs 12 bytes"),
    "truncated payload": (idx_bytes(0x08, (2, 3), b"\x00" * 5), "truncated"),
    "truncated int32": (idx_bytes(0x0C, (2,), b"\x00" * 7), "truncated"),
    "trailing bytes": (idx_bytes(0x08, (2, 3), b"\x00" * 7), "trailing bytes"),
    "huge dims": (idx_bytes(0x0E, (0xFFFFFFFF,) * 4, b"\x00" * 16), "too large for an array"),
    "big dims, short payload": (idx_bytes(0x0E, (0xFFFF, 0xFFFF), b"\x00" * 16), "truncated"),
    # No element at all, yet NumPy cannot describe the shape: refused by the reader, by name
    "zero dim, huge others": (idx_bytes(0x08, (0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), b""),
                              "too large for an array"),
    "zero dim last, huge others": (idx_bytes(0x0E, (0xFFFFFFFF, 2**28 + 1, 0), b""), "too large for an array"),
}


@pytest.mark.parametrize("case", sorted(BAD_IDX))
@pytest.mark.parametrize("form", ["raw file", "gz file", "stream", "gz stream"])
def test_idx_rejects_bad_files(tmp_path, case, form):
    data, message = BAD_IDX[case]
    if "gz" in form:
        data = gzip.compress(data)
    if "file" in form:
        src = tmp_path / "bad"
        src.write_bytes(data)
    else:
        src = Unseekable(data) if form == "gz stream" else io.BytesIO(data)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message) as info:
            idx.read_idx(src)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # a hostile header never costs a big allocation
    assert str(info.value).startswith(str(src) if "file" in form else "<file object>: ")


@pytest.mark.parametrize("form", ["raw file", "gz file", "stream"])
def test_idx_empty_shapes_at_numpy_limit(tmp_path, form):
    # The largest empty shapes NumPy can describe are read; one more item is refused (see BAD_IDX).
    for code, shape, dtype in [(0x08, (0, 0xFFFFFFFF, 2**31), np.uint8), (0x0E, (0xFFFFFFFF, 2**28, 0), np.float64)]:
        data = idx_bytes(code, shape, b"")
        if form == "gz file":
            data = gzip.compress(data)
        src = io.BytesIO(data)
        if "file" in form:
            src = tmp_path / "empty"
            src.write_bytes(data)
        a = idx.read_idx(src)
        assert a.shape == shape and a.dtype == dtype and a.size == 0


@given(header=st.sampled_from([b"", b"\x00\x00\x08\x01", b"\x00\x00\x0d\x02", b"\x00\x00\x0e\x04"]),
       body=st.binary(max_size=40), compressed=st.booleans())
def test_idx_fuzz_only_value_errors(header, body, compressed):
    data = header + body
    if compressed:
        data = gzip.compress(data)
    try:
        a = idx.read_idx(io.BytesIO(data))
    except ValueError:
        return
    # Accepted: then the header and payload sizes agree exactly.
    assert 4 + 4 * a.ndim + a.nbytes == len(header + body)


def test_idx_damaged_gzip_and_caps(tmp_path):
    data = gzip.compress(idx_bytes(0x08, (1000,), bytes(range(256)) * 3 + b"\x00" * 232))
    p = tmp_path / "cut.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="gzip|truncated"):
        idx.read_idx(p)
    corrupt = bytearray(data)
    corrupt[-6] ^= 0xFF  # CRC / length trailer
    p.write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match="gzip"):
        idx.read_idx(p)
    p.write_bytes(data)
    assert idx.read_idx(p, max_bytes=1000).shape == (1000,)
    with pytest.raises(ValueError, match="max_bytes=999"):
        idx.read_idx(p, max_bytes=999)


def test_idx_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="uint8, int8"):
        idx.write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="1 to 4 dimensions"):
        idx.write_idx(tmp_path / "x", np.zeros((), np.uint8))
    with pytest.raises(TypeError, match="source"):
        idx.read_idx(123)
    p = tmp_path / "t"
    idx.write_idx(p, np.zeros(3, np.uint8))
    with open(p, encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        idx.read_idx(f)
    with pytest.raises(ValueError, match="max_bytes"):
        idx.read_idx(p, max_bytes=-1)


# ---------------------------------------------------------------------------------------------------
# Paths that are not regular files: refused by name before they are opened, never waited on

def call_in_thread(fn, timeout=10.0):
    """Run fn() in a daemon thread; returns (finished, exception raised or None)."""
    box = {}

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive(), box.get("error")


@pytest.fixture
def fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    p = tmp_path / "train-images-idx3-ubyte.gz"
    os.mkfifo(p)
    yield p
    try:  # release a reader stuck in open() (the bug these tests guard against): a writer comes and goes
        os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def assert_refused(fn, path, kind, cls=NotARegularFileError):
    finished, error = call_in_thread(fn)
    assert finished, f"blocked on {kind} {path}"
    assert isinstance(error, cls) and isinstance(error, ValueError), repr(error)
    assert str(path) in str(error) and kind in str(error), str(error)


def test_idx_refuses_a_fifo_without_blocking(fifo, tmp_path):
    assert_refused(lambda: idx.read_idx(fifo), fifo, "FIFO")
    assert_refused(lambda: idx.read_idx(str(fifo), max_bytes=10), fifo, "FIFO")
    link = tmp_path / "link.gz"
    link.symlink_to(fifo)
    assert_refused(lambda: idx.read_idx(link), link, "FIFO")
    assert_refused(lambda: _files.file_hash(fifo, "md5"), fifo, "FIFO")


def test_idx_refuses_a_directory(tmp_path):
    for src in (tmp_path, str(tmp_path)):
        with pytest.raises(DirectoryNotFileError, match="is a directory, not an IDX file") as info:
            idx.read_idx(src)
        assert isinstance(info.value, ValueError) and isinstance(info.value, IsADirectoryError)
        assert str(tmp_path) in str(info.value)
    link = tmp_path / "dirlink"
    link.symlink_to(tmp_path)
    with pytest.raises(ValueError, match="directory") as info:
        idx.read_idx(link)
    assert str(link) in str(info.value)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_idx_refuses_devices(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    assert_refused(lambda: idx.read_idx(device), device, "character device")


def test_idx_refuses_a_socket(tmp_path):
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no Unix sockets")
    path = tmp_path / "s"
    if len(str(path)) > 100:
        pytest.skip("temporary path too long for a Unix socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        assert_refused(lambda: idx.read_idx(path), path, "socket")


def test_idx_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        idx.read_idx(tmp_path / "absent.gz")
    assert str(tmp_path / "absent.gz") in str(info.value)


def test_idx_truncated_files_name_the_file(tmp_path):
    full = idx_bytes(0x0C, (3, 2), struct.pack(">6i", *range(6)))
    for cut in (0, 2, 5, 11, len(full) - 1):
        for compressed in (False, True):
            p = tmp_path / (f"cut{cut}.gz" if compressed else f"cut{cut}")
            p.write_bytes(gzip.compress(full[:cut]) if compressed else full[:cut])
            with pytest.raises(ValueError, match="truncated") as info:
                idx.read_idx(p)
            assert str(info.value).startswith(f"{p}: "), str(info.value)


def test_loaders_refuse_a_fifo_as_path(fifo, env):
    def load():
        mnist.load_data(path=fifo)

    finished, error = call_in_thread(load)
    assert finished and isinstance(error, ValueError) and "FIFO" in str(error) and str(fifo) in str(error)


# ---------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST loaders on small fake files

def write_set(directory, n_train=6, n_test=4, tag=0, raw=False):
    """Fake MNIST files whose labels are (i + tag) % 10 and pixels i + tag, so each set is recognisable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contents = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = (np.arange(n, dtype=np.uint8)[:, None, None] + tag) * np.ones((1, 28, 28), np.uint8)
        y = ((np.arange(n) + tag) % 10).astype(np.uint8)
        for kind, a, shape in (("images-idx3", x, x.shape), ("labels-idx1", y, y.shape)):
            name = f"{prefix}-{kind}-ubyte.gz"
            data = idx_bytes(0x08, shape, a.tobytes())
            if raw:
                (directory / name[:-3]).write_bytes(data)
            else:
                data = gzip.compress(data, mtime=0)
                (directory / name).write_bytes(data)
            contents[name] = data
    return contents


def tag_of(result):
    (x_train, y_train), (x_test, y_test) = result
    return int(y_train[0])


def test_loader_reads_gz_and_raw(env):
    write_set(env / "gz", tag=3)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=env / "gz")
    assert x_train.shape == (6, 28, 28) and x_test.shape == (4, 28, 28)
    assert x_train.dtype == y_train.dtype == np.uint8
    np.testing.assert_array_equal(y_train, [3, 4, 5, 6, 7, 8])
    np.testing.assert_array_equal(x_test[:, 5, 7], [3, 4, 5, 6])
    write_set(env / "raw", tag=5, raw=True)
    assert tag_of(fashion_mnist.load_data(path=str(env / "raw"))) == 5
    (a, b), (c, d) = mnist.load_test_split(env / "raw", n_train=3)
    np.testing.assert_array_equal(b, [5, 6, 7])
    np.testing.assert_array_equal(d, [8])


def test_search_order(env, monkeypatch):
    data = env / "data"
    monkeypatch.setenv("CYNET_DATA_DIR", str(data))
    places = [env / "mine", data / "mnist", data, Path(env / "home/.cynet/datasets/mnist")]
    for tag, place in enumerate(places):
        contents = write_set(place, tag=tag + 1)
    for name, content in contents.items():  # files in the cache must match the published hashes
        monkeypatch.setitem(mnist.MD5, name, md5(content))
    for tag, place in enumerate(places):
        assert tag_of(mnist.load_data(path=env / "mine")) == tag + 1
        for f in place.glob("*-ubyte.gz"):
            f.unlink()
    with pytest.raises(DatasetNotFoundError):
        mnist.load_data(path=env / "mine", download=False)


def test_search_order_fashion_and_incomplete_dirs(env, monkeypatch):
    data = env / "data"
    monkeypatch.setenv("CYNET_DATA_DIR", str(data))
    write_set(data / "mnist", tag=1)
    write_set(data / "fashion_mnist", tag=2)
    assert tag_of(fashion_mnist.load_data()) == 2
    assert tag_of(mnist.load_data()) == 1
    # A directory missing one file is skipped as a whole (files of two data sets are never mixed).
    (data / "fashion_mnist" / FILES[1]).unlink()
    write_set(data, tag=7)
    assert tag_of(fashion_mnist.load_data()) == 7
    # The test split needs only the t10k files.
    (data / FILES[0]).unlink()
    (a, b), (c, d) = fashion_mnist.load_test_split(n_train=2)
    assert b[0] == 2  # fashion_mnist/ still holds both t10k files


def test_offline_error_lists_every_place(env, monkeypatch):
    calls = []

    def offline(url, timeout=None):
        calls.append((url, timeout))
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(_files, "urlopen", offline)
    mine = env / "mine"
    write_set(mine)
    (mine / FILES[0]).unlink()
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data(path=mine)
    assert isinstance(info.value, DatasetNotFoundError)
    msg = str(info.value)
    assert str(mine) in msg and f"missing {FILES[0]}" in msg
    assert str(env / "home/.cynet/datasets/mnist") in msg
    assert "CYNET_DATA_DIR is not set" in msg
    assert "CYNET_DATA_DIR=DIR" in msg and "path=DIR" in msg
    assert "Name or service not known" in msg
    assert calls and all(0 < t <= 60 for _, t in calls)
    assert calls[0][0] == mnist.MIRRORS[0] + FILES[0]
    # No partial files are left in the cache.
    cache = env / "home/.cynet/datasets/mnist"
    assert not cache.exists() or not any(cache.iterdir())

    monkeypatch.setenv("CYNET_DATA_DIR", str(env / "data"))
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist.load_data()
    msg = str(info.value)
    assert str(env / "data" / "fashion_mnist") in msg and str(env / "data") in msg
    assert "not set" not in msg


def test_bad_arguments(env):
    f = env / "file"
    f.write_bytes(b"")
    with pytest.raises(ValueError, match="directory"):
        mnist.load_data(path=f)
    with pytest.raises(TypeError, match="path"):
        mnist.load_data(path=3)
    with pytest.raises(TypeError, match="test_split_only"):
        mnist.load_data(test_split_only="yes")
    write_set(env / "d")
    with pytest.raises(ValueError, match="n_train"):
        mnist.load_test_split(env / "d", n_train=4)
    with pytest.raises(ValueError, match="n_train"):
        mnist.load_test_split(env / "d", n_train=0)


def test_loader_rejects_wrong_contents(env):
    d = env / "d"
    write_set(d)
    (d / FILES[3]).write_bytes(gzip.compress(idx_bytes(0x08, (3,), b"\x00\x01\x02")))
    with pytest.raises(ValueError, match="4 images but .* 3 labels"):
        mnist.load_data(path=d)
    (d / FILES[3]).write_bytes(gzip.compress(idx_bytes(0x08, (4,), b"\x00\x01\x02\x0a")))
    with pytest.raises(ValueError, match="labels must be 0-9"):
        mnist.load_data(path=d)
    (d / FILES[2]).write_bytes(gzip.compress(idx_bytes(0x08, (4, 28, 27), b"\x00" * (4 * 28 * 27))))
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        mnist.load_data(path=d)


class FakeResponse(io.BytesIO):
    pass


def fake_server(files, log):
    """A urlopen that serves `files` ({url: bytes}) and logs every request."""
    def urlopen(url, timeout=None):
        log.append(url)
        assert timeout is not None and timeout > 0
        if url not in files:
            raise urllib.error.HTTPError(url, 404, "Not Found", None, None)
        return FakeResponse(files[url])
    return urlopen


def test_download_verifies_hash_and_caches(env, monkeypatch):
    contents = write_set(env / "upstream", tag=4)
    for name, data in contents.items():
        monkeypatch.setitem(mnist.MD5, name, md5(data))
    log = []
    monkeypatch.setattr(_files, "urlopen", fake_server({mnist.MIRRORS[0] + n: d for n, d in contents.items()}, log))
    assert tag_of(mnist.load_data()) == 4
    assert sorted(log) == sorted(mnist.MIRRORS[0] + n for n in FILES)
    cache = env / "home/.cynet/datasets/mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)  # no .part files
    for name, data in contents.items():
        assert (cache / name).read_bytes() == data
    # Second call: served from the cache.
    log.clear()
    assert tag_of(mnist.load_data()) == 4 and log == []
    # A cached file that fails its hash is fetched again.
    (cache / FILES[1]).write_bytes(b"junk")
    assert tag_of(mnist.load_data()) == 4
    assert log == [mnist.MIRRORS[0] + FILES[1]]


def test_download_rejects_wrong_hash(env, monkeypatch):
    contents = write_set(env / "upstream", tag=4)
    for name, data in contents.items():
        monkeypatch.setitem(mnist.MD5, name, md5(data))
    tampered = dict(contents)
    tampered[FILES[2]] = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x00")
    log = []
    served = {m + n: d for m in mnist.MIRRORS for n, d in tampered.items()}
    monkeypatch.setattr(_files, "urlopen", fake_server(served, log))
    with pytest.raises(ValueError, match=f"md5 is {md5(tampered[FILES[2]])}, expected the published "
                                         f"{md5(contents[FILES[2]])}"):
        mnist.load_data()
    assert mnist.MIRRORS[-1] + FILES[2] in log  # every mirror was tried
    cache = env / "home/.cynet/datasets/mnist"
    assert FILES[2] not in {p.name for p in cache.iterdir()}
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]
    # A bad first mirror and a good second one: the download succeeds.
    served.update({mnist.MIRRORS[1] + n: d for n, d in contents.items()})
    assert tag_of(mnist.load_data()) == 4


def test_download_fashion_uses_zalando_mirror_and_size_cap(env, monkeypatch):
    contents = write_set(env / "upstream", tag=6)
    for name, data in contents.items():
        monkeypatch.setitem(fashion_mnist.MD5, name, md5(data))
    log = []
    monkeypatch.setattr(_files, "urlopen", fake_server({fashion_mnist.MIRRORS[0] + n: d
                                                        for n, d in contents.items()}, log))
    (a, b), _ = fashion_mnist.load_test_split(n_train=2)
    assert b[0] == 6
    assert sorted(log) == sorted(fashion_mnist.MIRRORS[0] + n for n in FILES[2:])
    assert "fashion-mnist" in fashion_mnist.MIRRORS[0]
    # The streaming download refuses bodies over the cap and leaves nothing behind.
    with pytest.raises(ValueError, match="exceeds 10 bytes"):
        _files.download(fashion_mnist.MIRRORS[0] + FILES[0], env / "cap" / "f", md5(contents[FILES[0]]),
                        max_bytes=10)
    assert list((env / "cap").iterdir()) == []


def test_broken_connection_leaves_no_partial_file(env, monkeypatch):
    import http.client

    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell():
                raise http.client.IncompleteRead(b"")
            return super().read(5)

    monkeypatch.setattr(_files, "urlopen", lambda url, timeout: Broken(b"0123456789"))
    with pytest.raises(DatasetNotFoundError, match="connection broken"):
        mnist.load_test_split()
    assert list((env / "home/.cynet/datasets/mnist").iterdir()) == []


def test_download_false_never_goes_online(env):
    with pytest.raises(DatasetNotFoundError, match=r"download=False"):
        mnist.load_data(download=False)
    assert not mnist.training_files_present()


# ---------------------------------------------------------------------------------------------------
# Text

def test_vocabulary():
    s = "hello, world!\nhé 😀"
    v = text.CharVocabulary.from_text(s)
    chars = sorted(set(s))  # independent definition: distinct characters by code point
    assert v.size == len(v) == len(chars) and v.chars == "".join(chars)
    np.testing.assert_array_equal(v.encode(s), [chars.index(c) for c in s])
    assert v.encode(s).dtype.kind == "i"
    assert v.decode(v.encode(s)) == s
    assert v.decode([]) == ""
    assert v.char_to_index["h"] == chars.index("h") and v.index_to_char[0] == chars[0]
    w = text.CharVocabulary.from_config(v.get_config())
    assert w == v and w.encode(s).tolist() == v.encode(s).tolist()
    import json
    assert text.CharVocabulary.from_config(json.loads(json.dumps(v.get_config()))) == v
    # Given order is kept.
    u = text.CharVocabulary("cab")
    np.testing.assert_array_equal(u.encode("abcab"), [1, 2, 0, 1, 2])
    assert u.decode(np.array([2, 0], np.int64)) == "bc"
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['z'\]"):
        u.encode("abz")
    with pytest.raises(ValueError, match="distinct"):
        text.CharVocabulary("aba")
    with pytest.raises(ValueError, match="empty"):
        text.CharVocabulary.from_text("")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        u.decode([3])
    with pytest.raises(TypeError, match="integers"):
        u.decode([0.5])


def test_load_text_and_locator(env, monkeypatch, tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("a\r\nb é\n".encode("utf-8"))
    assert text.load_text(p) == "a\r\nb é\n"
    assert text.find_text_file("t.txt", path=p) == p
    data = env / "data"
    monkeypatch.setenv("CYNET_DATA_DIR", str(data))
    places = [env / "mine", data / "text", data, env / "home/.cynet/datasets/text"]
    for place in places:
        place.mkdir(parents=True, exist_ok=True)
        (place / "c.txt").write_text(str(place))
    for place in places:
        found = text.find_text_file("c.txt", path=env / "mine")
        assert found == place / "c.txt"
        found.unlink()
    with pytest.raises(DatasetNotFoundError, match="no download source"):
        text.find_text_file("c.txt", path=env / "mine")
    with pytest.raises(ValueError, match="plain file name"):
        text.find_text_file("../c.txt")


def test_tiny_shakespeare_download(env, monkeypatch):
    body = "First Citizen:\nBefore we proceed".encode()
    urls, _ = text.KNOWN_FILES[text.TINY_SHAKESPEARE]
    monkeypatch.setitem(text.KNOWN_FILES, text.TINY_SHAKESPEARE, (urls, md5(body)))
    log = []
    monkeypatch.setattr(_files, "urlopen", fake_server({urls[0]: body}, log))
    assert text.tiny_shakespeare() == body.decode()
    assert log == [urls[0]] and "karpathy/char-rnn" in urls[0]
    assert (env / "home/.cynet/datasets/text/tinyshakespeare.txt").read_bytes() == body


def test_char_windows_hand_worked():
    e = np.arange(10, dtype=np.int32)
    x, y = text.char_windows(e, seq_length=3, step=2)
    np.testing.assert_array_equal(x, [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8]])
    np.testing.assert_array_equal(y, [3, 5, 7, 9])
    assert x.dtype == np.int32 and x.flags.c_contiguous
    x, y = text.char_windows(e, 3, step=2, many_to_many=True)
    np.testing.assert_array_equal(y, [[1, 2, 3], [3, 4, 5], [5, 6, 7], [7, 8, 9]])
    x, y = text.char_windows(e[:4], 3)
    np.testing.assert_array_equal(x, [[0, 1, 2]])
    np.testing.assert_array_equal(y, [3])


@pytest.mark.parametrize("length,T,step", [(50, 7, 1), (50, 7, 3), (23, 5, 4), (9, 8, 5)])
def test_char_windows_definition(rng, length, T, step):
    e = rng.integers(0, 30, size=length)
    x, y = text.char_windows(e, T, step=step)
    _, ym = text.char_windows(e, T, step=step, many_to_many=True)
    starts = [s for s in range(0, length, step) if s + T < length]
    np.testing.assert_array_equal(x, [e[s:s + T] for s in starts])
    np.testing.assert_array_equal(y, [e[s + T] for s in starts])
    np.testing.assert_array_equal(ym, [e[s + 1:s + T + 1] for s in starts])


def test_char_windows_errors():
    with pytest.raises(ValueError, match="at least 4"):
        text.char_windows(np.arange(3), 3)
    with pytest.raises(ValueError, match="seq_length"):
        text.char_windows(np.arange(5), 0)
    with pytest.raises(ValueError, match="step"):
        text.char_windows(np.arange(5), 2, step=0)
    with pytest.raises(TypeError, match="integer"):
        text.char_windows(np.arange(5.0), 2)
    with pytest.raises(ValueError, match="1-D"):
        text.char_windows(np.zeros((2, 5), int), 2)


def test_one_hot():
    x = np.array([[0, 2], [1, 0]])
    oh = text.one_hot(x, 3)
    assert oh.shape == (2, 2, 3) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh, np.eye(3, dtype=np.float32)[x])
    assert text.one_hot([1], text.CharVocabulary("ab")).tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError, match="vocab_size"):
        text.one_hot(x, 0)


def test_apply_temperature_formula():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    for t in (0.25, 0.5, 1.0, 2.0, 10.0):
        q = p ** (1 / t)
        np.testing.assert_allclose(text.apply_temperature(p, t), q / q.sum(), rtol=1e-12)
    np.testing.assert_array_equal(text.apply_temperature(p, 0), [1, 0, 0, 0])
    np.testing.assert_allclose(text.apply_temperature([2.0, 2.0], 1), [0.5, 0.5])
    tiny = text.apply_temperature([0.6, 0.4], 1e-3)  # no overflow: p**1000 underflows, the ratio does not
    assert tiny[0] == 1.0 and tiny[1] < 1e-100
    with pytest.raises(ValueError, match="temperature"):
        text.apply_temperature(p, -1)
    with pytest.raises(ValueError, match="non-negative"):
        text.apply_temperature([0.5, -0.1], 1)


class FakeModel:
    """predict(x): `table[last input id]` as a (1, V) or (1, T, V) probability array; logs inputs."""

    def __init__(self, table, sequences=False):
        self.table = np.asarray(table, dtype=np.float32)
        self.sequences = sequences
        self.inputs = []

    def predict(self, x, verbose="auto"):
        assert verbose == 0
        x = np.asarray(x)
        self.inputs.append(x.copy())
        last = int(np.argmax(x[0, -1])) if x.ndim == 3 else int(x[0, -1])
        out = self.table[last][None]
        if self.sequences:
            out = np.repeat(out[:, None], x.shape[1], axis=1)
        return out


def test_sample_feeds_last_window_and_follows_model():
    v = text.CharVocabulary("abcd")
    cycle = np.roll(np.eye(4), 1, axis=1)  # after id i, id i+1 with probability 1
    m = FakeModel(cycle)
    out = text.sample(m, v, "abcab", 6, temperature=1.0, rng=0, seq_length=3)
    assert out == "cdabcd"
    assert [x.shape for x in m.inputs] == [(1, 3)] * 6
    np.testing.assert_array_equal(m.inputs[0], [[2, 0, 1]])  # the last 3 seed characters, "cab"
    np.testing.assert_array_equal(m.inputs[1], [[0, 1, 2]])  # "abc": the window slid by the new "c"
    # one-hot inputs and sequence outputs (last step is used)
    m = FakeModel(cycle, sequences=True)
    assert text.sample(m, v, "bc", 3, one_hot=True, rng=1) == "dab"
    assert m.inputs[0].shape == (1, 2, 4) and m.inputs[0].dtype == np.float32
    np.testing.assert_array_equal(m.inputs[0][0], np.eye(4)[[1, 2]])
    np.testing.assert_array_equal(m.inputs[1][0], np.eye(4)[[2, 3]])
    assert text.sample(m, v, "a", 0) == ""


def test_sample_window_contents():
    v = text.CharVocabulary("abcd")
    m = FakeModel(np.roll(np.eye(4), 1, axis=1))
    text.sample(m, v, "dab", 2, seq_length=2, rng=0)
    np.testing.assert_array_equal(m.inputs[0], [[v.encode("a")[0], v.encode("b")[0]]])
    np.testing.assert_array_equal(m.inputs[1], [v.encode("bc")])


class FixedUniform:
    """An rng whose random() returns the given values in turn."""

    def __init__(self, values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


def test_sample_temperature_inverse_cdf_and_argmax():
    v = text.CharVocabulary("xyz")
    p = np.array([0.2, 0.5, 0.3])
    m = FakeModel(np.tile(p, (3, 1)))
    # t = 0.5: q = p**2 / sum = [0.04, 0.25, 0.09] / 0.38; CDF = [0.105, 0.763, 1].
    q = p ** 2 / (p ** 2).sum()
    cdf = np.cumsum(q)
    us = [0.0, cdf[0] - 1e-6, cdf[0] + 1e-6, cdf[1] - 1e-6, cdf[1] + 1e-6, 0.999999]  # (float32 outputs)
    assert text.sample(m, v, "x", len(us), temperature=0.5, rng=FixedUniform(us)) == "xxyyzz"
    # temperature 0: greedy, the rng is not used.
    assert text.sample(m, v, "x", 4, temperature=0, rng=FixedUniform([])) == "yyyy"
    # logits
    m = FakeModel(np.tile(np.log(p), (3, 1)))
    assert text.sample(m, v, "x", 2, temperature=0.5, rng=FixedUniform(us[:2]), from_logits=True) == "xx"


def test_sample_frequencies_follow_temperature():
    v = text.CharVocabulary("xyz")
    p = np.array([0.2, 0.5, 0.3])
    m = FakeModel(np.tile(p, (3, 1)))
    n = 3000
    for t in (0.5, 2.0):
        out = text.sample(m, v, "x", n, temperature=t, rng=np.random.default_rng(7))
        counts = np.array([out.count(c) for c in "xyz"])
        q = p ** (1 / t) / (p ** (1 / t)).sum()
        sigma = np.sqrt(n * q * (1 - q))
        assert np.all(np.abs(counts - n * q) < 4 * sigma), (t, counts, n * q)


def test_sample_errors():
    v = text.CharVocabulary("ab")
    m = FakeModel(np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="seq_length=3"):
        text.sample(m, v, "ab", 1, seq_length=3)
    with pytest.raises(ValueError, match="temperature"):
        text.sample(m, v, "ab", 1, temperature=-0.1)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        text.sample(m, v, "ac", 1)
    with pytest.raises(ValueError, match=r"expected \(1, 2\)"):
        text.sample(FakeModel(np.full((2, 3), 1 / 3)), v, "ab", 1)
    with pytest.raises(TypeError, match="CharVocabulary"):
        text.sample(m, "ab", "ab", 1)


# ---------------------------------------------------------------------------------------------------
# Tabular (optional scikit-learn)

def test_tabular_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r'pip install "cynet\[examples\]"'):
        tabular.load_iris()


def test_tabular_iris_split():
    datasets = pytest.importorskip("sklearn.datasets")
    (x_train, y_train), (x_test, y_test) = tabular.load_iris()
    assert x_train.shape == (120, 4) and x_test.shape == (30, 4)
    assert x_train.dtype == x_test.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_test), [10, 10, 10])  # stratified
    bunch = datasets.load_iris()
    full = np.concatenate([x_train, x_test]).astype(np.float64)
    labels = np.concatenate([y_train, y_test])
    # Train and test partition the data set (rows matched with their labels).
    key = lambda x, y: sorted(map(tuple, np.column_stack([np.round(x, 5), y])))  # noqa: E731
    assert key(full, labels) == key(bunch.data, bunch.target)
    # Fixed by the seed.
    (a, b), (c, d) = tabular.load_iris(seed=0)
    np.testing.assert_array_equal(a, x_train)
    np.testing.assert_array_equal(d, y_test)
    (a, b), _ = tabular.load_iris(seed=1)
    assert not np.array_equal(a, x_train)
    # Standardised with the training statistics.
    (s_train, _), (s_test, _) = tabular.load_iris(standardize=True)
    x64 = x_train.astype(np.float64)
    mu, sd = x64.mean(0), x64.std(0)
    np.testing.assert_allclose(s_train, (x64 - mu) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s_test, (x_test - mu) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s_train.mean(0), 0, atol=1e-5)


@pytest.mark.parametrize("name,n,features,classes", [("load_digits", 1797, 64, 10),
                                                      ("load_breast_cancer", 569, 30, 2),
                                                      ("load_wine", 178, 13, 3)])
def test_tabular_shapes(name, n, features, classes):
    pytest.importorskip("sklearn")
    (x_train, y_train), (x_test, y_test) = getattr(tabular, name)(test_size=0.25, seed=3)
    assert len(x_train) + len(x_test) == n and x_train.shape[1] == features
    assert set(np.unique(y_train)) == set(range(classes)) == set(np.unique(y_test))
    counts = np.bincount(np.concatenate([y_train, y_test]))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=classes), np.round(0.25 * counts))


def test_stratified_split_errors():
    with pytest.raises(ValueError, match="test_size"):
        tabular.stratified_split(np.arange(10) % 2, test_size=1.0)
    with pytest.raises(ValueError, match="seed"):
        tabular.stratified_split(np.arange(10) % 2, seed=-1)
    tr, te = tabular.stratified_split(np.array([0, 0, 1, 1, 1]), test_size=0.01)
    assert sorted(np.concatenate([tr, te])) == [0, 1, 2, 3, 4] and len(te) == 2  # one per class
