"""Model and weights files under damage and attack, and saves that are interrupted.

Every refused load must raise FileFormatError (a ValueError naming the file), or
FileNotFoundError / IsADirectoryError for a path that is not a file; it must not unpickle,
import or execute anything from the file, must not allocate what the file does not pay for, and
must not write anything (the listings of tmp_path and its parent are compared around each
attempt). Every interrupted save must leave the previous file byte for byte as it was.
"""
import copy
import errno
import functools
import io
import json
import os
import pickle
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cynet import callbacks, layers, models, utils
from cynet.saving import MAX_LAYERS, FileFormatError

X = np.random.default_rng(0).random((24, 4))
Y = np.arange(24) % 3


def architecture(units=5):
    return models.Sequential([layers.Input(shape=(4,)), layers.Dense(units, activation="relu", name="hidden"),
                              layers.BatchNormalization(name="bn"), layers.Dense(3, activation="softmax",
                                                                                 name="out")])


def trained(seed=0, units=5):
    utils.set_random_seed(seed)
    model = architecture(units)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    return model


@pytest.fixture
def saved(tmp_path):
    model = trained()
    path, wpath = tmp_path / "model.cynet", tmp_path / "model.weights.npz"
    model.save(path)
    model.save_weights(wpath)
    models.load_model(path)  # import whatever loading imports lazily before sys.modules is compared
    architecture().load_weights(wpath)
    return model, path, wpath


# ------------------------------------------------------------------------------------------ helpers

def load_model(path):
    return models.load_model(path)


def load_weights(path):
    architecture().load_weights(path)


LOADERS = [load_model, load_weights]


def listing(tmp_path):
    """Everything under tmp_path (name, size, mtime, mode) and the names beside it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            found.append((os.path.relpath(p, tmp_path), st_.st_size, st_.st_mtime_ns, stat.S_IMODE(st_.st_mode)))
    return sorted(found), sorted(os.listdir(tmp_path.parent))


def refused(loader, path, tmp_path, exc=FileFormatError, match=None):
    """Run loader(path), expecting exc; check nothing was written, imported or left behind."""
    before, modules = listing(tmp_path), set(sys.modules)
    with pytest.raises(exc, match=match) as info:
        loader(path)
    assert listing(tmp_path) == before
    # (zipfile decodes legacy member names with the cp437 codec, which Python imports on first use.)
    new_modules = {m for m in set(sys.modules) - modules if not m.startswith("encodings.")}
    assert new_modules == set(), "loading imported modules named by the file"
    if exc is FileFormatError:
        assert str(path) in str(info.value)
    return info.value


def members(path):
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def write_zip(path, items, compression=zipfile.ZIP_STORED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for name, data in items:
                zf.writestr(zipfile.ZipInfo(name) if isinstance(name, str) else name, data,
                            compress_type=compression)
    return path


def rebuilt(src, dst, replace=None, add=(), drop=()):
    """A copy of the zip src with some members replaced (name -> bytes), added or dropped."""
    replace = replace or {}
    items = [(n, replace.get(n, d)) for n, d in members(src) if n not in drop]
    return write_zip(dst, items + list(add))


def config_of(path):
    return json.loads(dict(members(path))["config.json"])


def with_config(src, dst, config):
    raw = config if isinstance(config, bytes) else json.dumps(config).encode()
    return rebuilt(src, dst, replace={"config.json": raw})


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_raw(header, data=b"", version=(1, 0), header_len=None):
    """A .npy member with an arbitrary header text."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    size = len(text) if header_len is None else header_len
    length = struct.pack("<H" if version == (1, 0) else "<I", size)
    return b"\x93NUMPY" + bytes(version) + length + text + data


def same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def assert_intact(path, model):
    """path loads as a model with model's architecture, weights and optimizer state."""
    loaded = models.load_model(path)
    assert loaded.get_config() == model.get_config()
    same_weights(loaded.get_weights(), model.get_weights())
    same_weights([v.value for v in loaded.optimizer.variables], [v.value for v in model.optimizer.variables])
    return loaded


def data_span(raw, path, name):
    """(start, end) of member `name`'s data in the archive bytes raw."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    return start, start + info.compress_size


def central_entries(raw):
    """{name: offset of its central directory record} for the zip bytes raw."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        start = zf.start_dir
    out, pos = {}, start
    while raw[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack("<HHH", raw[pos + 28:pos + 34])
        out[raw[pos + 46:pos + 46 + name_len].decode()] = pos
        pos += 46 + name_len + extra_len + comment_len
    return out


# ====================================================================================== baseline

def test_round_trip_and_saved_file_permissions_follow_the_umask(tmp_path):
    model = trained()
    old = os.umask(0o027)
    try:
        model.save(tmp_path / "a.cynet")
        model.save_weights(tmp_path / "a.weights.npz")
        os.umask(0o002)
        model.save(tmp_path / "b.cynet")
    finally:
        os.umask(old)
    # What a plain open() gives, not mkstemp's 0600.
    assert stat.S_IMODE(os.stat(tmp_path / "a.cynet").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "a.weights.npz").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "b.cynet").st_mode) == 0o664
    # Overwriting keeps the permissions of the file replaced, as open(path, "w") would.
    os.chmod(tmp_path / "a.cynet", 0o600)
    model.save(tmp_path / "a.cynet")
    assert stat.S_IMODE(os.stat(tmp_path / "a.cynet").st_mode) == 0o600
    assert_intact(tmp_path / "a.cynet", model)
    other = architecture()
    other.load_weights(tmp_path / "a.weights.npz")
    same_weights(other.get_weights(), model.get_weights())
    assert sorted(os.listdir(tmp_path)) == ["a.cynet", "a.weights.npz", "b.cynet"]


def test_load_weights_reads_the_weights_of_a_model_file_and_load_model_refuses_a_weights_file(saved, tmp_path):
    model, path, wpath = saved
    other = architecture()
    other.load_weights(path)
    same_weights(other.get_weights(), model.get_weights())
    refused(load_model, wpath, tmp_path, match="cynet-weights")


# ==================================================================================== truncation

@pytest.mark.parametrize("loader", LOADERS)
def test_truncated_files_are_refused_at_every_cut(saved, tmp_path, loader):
    model, path, wpath = saved
    raw = (path if loader is load_model else wpath).read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        start_dir = zf.start_dir
    step = 1 if loader is load_weights else 5
    cuts = set(range(0, len(raw), step)) | set(range(start_dir - 8, len(raw)))  # all of the central directory
    for name, _ in members(path if loader is load_model else wpath):
        lo, hi = data_span(raw, path if loader is load_model else wpath, name)
        cuts |= {lo, lo + 1, (lo + hi) // 2, hi - 1}  # inside each member's data
    damaged = tmp_path / ("cut" + (".cynet" if loader is load_model else ".weights.npz"))
    for cut in sorted(cuts):
        damaged.write_bytes(raw[:cut])
        refused(loader, damaged, tmp_path)


@pytest.mark.parametrize("loader", LOADERS)
def test_a_truncated_array_inside_a_well_formed_zip_is_refused(saved, tmp_path, loader):
    model, path, _ = saved
    for name, data in members(path):
        if not name.endswith(".npy"):
            continue
        for keep in (len(data) - 1, len(data) // 2, 130, 10, 0):
            bad = rebuilt(path, tmp_path / "bad.cynet", replace={name: data[:keep]})
            if name.startswith("optimizer") and loader is load_weights:
                loader(bad)  # load_weights does not read the optimizer state
                continue
            refused(loader, bad, tmp_path)
        # The same array with bytes appended is refused too: the header must account for every byte.
        refused(loader if name.startswith("weights") else load_model,
                rebuilt(path, tmp_path / "bad.cynet", replace={name: data + b"\0" * 4}), tmp_path,
                match="declares")


# ============================================================================= corruption (flips)

def check_flip(path, model):
    """A flipped byte is refused, or (in a field zip readers ignore, such as a timestamp) changes nothing."""
    try:
        loaded = models.load_model(path)
    except FileFormatError as exc:
        assert str(path) in str(exc)
        return False
    assert loaded.get_config() == model.get_config()
    same_weights(loaded.get_weights(), model.get_weights())
    same_weights([v.value for v in loaded.optimizer.variables], [v.value for v in model.optimizer.variables])
    return True


def test_random_byte_flips_are_refused_or_harmless(saved, tmp_path):
    model, path, wpath = saved
    raw = path.read_bytes()
    rng = np.random.default_rng(20240501)
    damaged = tmp_path / "flip.cynet"
    outcomes = []
    for pos in rng.choice(len(raw), size=min(len(raw), 400), replace=False):
        flipped = bytearray(raw)
        flipped[pos] ^= int(rng.integers(1, 256))
        damaged.write_bytes(bytes(flipped))
        before = listing(tmp_path)
        outcomes.append(check_flip(damaged, model))
        assert listing(tmp_path) == before
    assert outcomes.count(False) > len(outcomes) // 2  # most bytes are data, CRC-checked
    # Every position of the weights file, against load_weights.
    raw = wpath.read_bytes()
    damaged = tmp_path / "flip.weights.npz"
    for pos in range(len(raw)):
        flipped = bytearray(raw)
        flipped[pos] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        fresh = architecture()
        try:
            fresh.load_weights(damaged)
        except FileFormatError as exc:
            assert str(damaged) in str(exc)
            continue
        same_weights(fresh.get_weights(), model.get_weights())


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    directory = tmp_path_factory.mktemp("flips")
    model = trained()
    model.save(directory / "model.cynet")
    return model, directory, (directory / "model.cynet").read_bytes()


@given(position=st.integers(min_value=0, max_value=10**9), mask=st.integers(min_value=1, max_value=255))
def test_byte_flips_hypothesis(pristine, position, mask):
    model, directory, raw = pristine
    flipped = bytearray(raw)
    flipped[position % len(raw)] ^= mask
    damaged = directory / "flip.cynet"
    damaged.write_bytes(bytes(flipped))
    before = sorted(os.listdir(directory))
    check_flip(damaged, model)
    assert sorted(os.listdir(directory)) == before


@pytest.mark.parametrize("loader", LOADERS)
def test_crc_errors_in_array_data_and_config_surface_as_file_format_errors(saved, tmp_path, loader):
    model, path, wpath = saved
    source = path if loader is load_model else wpath
    raw = source.read_bytes()
    for name in ("weights/00000.npy", "weights/00003.npy", "config.json"):
        lo, hi = data_span(raw, source, name)
        flipped = bytearray(raw)
        flipped[hi - 1] ^= 0x01  # the last byte of data: nothing but the CRC notices
        bad = tmp_path / ("crc" + source.name[source.name.index("."):])
        bad.write_bytes(bytes(flipped))
        err = refused(loader, bad, tmp_path)
        assert "CRC" in str(err) or name == "config.json"
    # The stored CRC itself damaged.
    entry = central_entries(raw)["weights/00001.npy"]
    flipped = bytearray(raw)
    flipped[entry + 16] ^= 0xFF
    bad.write_bytes(bytes(flipped))
    assert "CRC" in str(refused(loader, bad, tmp_path))


# ================================================================================== wrong format

@pytest.mark.parametrize("loader", LOADERS)
def test_files_of_other_formats_are_refused(tmp_path, loader):
    text = tmp_path / "notes.cynet"
    text.write_text("these are not weights\n" * 20)
    assert "not a cynet file" in str(refused(loader, text, tmp_path))
    empty = tmp_path / "empty.cynet"
    empty.write_bytes(b"")
    refused(loader, empty, tmp_path, match="not a cynet file")
    npz = tmp_path / "arrays.npz"
    np.savez(npz, kernel=np.ones((4, 5), np.float32), bias=np.zeros(5, np.float32))
    refused(loader, npz, tmp_path, match="NumPy .npz")
    # The layout of a Keras 3 .keras file: config.json of another format, metadata.json, model.weights.h5.
    keras_config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
                    "config": {"name": "sequential", "layers": [{"module": "keras.layers", "class_name": "Dense",
                                                                  "config": {"units": 3}}]}}
    # Named .cynet (a .keras name is read as Keras's format: tests/robustness/test_keras_files_hostile.py).
    keras = write_zip(tmp_path / "model_keras.cynet", [
        ("metadata.json", json.dumps({"keras_version": "3.3.3", "date_saved": "2024-05-01@12:00:00"}).encode()),
        ("config.json", json.dumps(keras_config).encode()),
        ("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 200)], compression=zipfile.ZIP_DEFLATED)
    refused(loader, keras, tmp_path, match="Keras")
    directory = tmp_path / "adir.cynet"
    directory.mkdir()
    refused(loader, directory, tmp_path, exc=IsADirectoryError)
    refused(loader, tmp_path / "missing.cynet", tmp_path, exc=FileNotFoundError)
    refused(loader, tmp_path / "no" / "such" / "dir.cynet", tmp_path, exc=FileNotFoundError)
    if os.path.exists("/dev/null"):
        refused(loader, "/dev/null", tmp_path, match="not a regular file")


# ============================================================================ wrong architecture

def test_weights_of_another_model_are_refused_and_leave_the_model_untouched(saved, tmp_path):
    model, path, wpath = saved
    cases = [
        (models.Sequential([layers.Input(shape=(4,)), layers.Dense(3)]), "holds 8 weights, the model has 2"),
        (models.Sequential([layers.Input(shape=(4,)), layers.Dense(5), layers.Dense(3)]), "holds 8"),
        (architecture(units=6), r"shape \(4, 5\).*hidden/kernel.*\(4, 6\)"),  # same count, other shapes
        (models.Sequential([layers.Input(shape=(5,)), layers.Dense(5, name="hidden"), layers.BatchNormalization(),
                            layers.Dense(3)]), "shape"),
    ]
    for other, match in cases:
        before = other.get_weights()
        for source in (path, wpath):
            refused(lambda p, m=other: m.load_weights(p), source, tmp_path, match=match)
            same_weights(other.get_weights(), before)  # nothing assigned
    # A model whose last array alone does not fit keeps all of its weights.
    bad = rebuilt(wpath, tmp_path / "bad.weights.npz", replace={"weights/00007.npy": npy(np.zeros((4,), np.float32))})
    fresh = architecture()
    before = fresh.get_weights()
    refused(lambda p: fresh.load_weights(p), bad, tmp_path, match="00007")
    same_weights(fresh.get_weights(), before)


def test_mismatched_dtypes(saved, tmp_path):
    model, path, wpath = saved
    kernel = model.get_weights()[0]
    # load_weights casts float arrays of another precision to the model's dtype (as Keras's assign does) ...
    as64 = rebuilt(wpath, tmp_path / "f64.weights.npz",
                   replace={"weights/00000.npy": npy(kernel.astype(np.float64) / 3)})
    fresh = architecture()
    fresh.load_weights(as64)
    assert fresh.get_weights()[0].dtype == np.float32
    np.testing.assert_array_equal(fresh.get_weights()[0], (kernel.astype(np.float64) / 3).astype(np.float32))
    # ... and refuses values that are not floats.
    for bad_array in (kernel.astype(np.int32), kernel.astype(np.complex64), kernel > 0, kernel.astype("U3")):
        bad = rebuilt(wpath, tmp_path / "bad.weights.npz", replace={"weights/00000.npy": npy(bad_array)})
        refused(load_weights, bad, tmp_path, match="not plain numbers|holds (int32|complex64|bool)")
    # A model file describes its own dtypes: an array that disagrees with config.json is refused.
    bad = rebuilt(path, tmp_path / "bad.cynet", replace={"weights/00000.npy": npy(kernel.astype(np.float64))})
    refused(load_model, bad, tmp_path, match="float64.*needs.*float32")
    # A float64 model round-trips in float64.
    utils.set_random_seed(1)
    m64 = models.Sequential([layers.Input(shape=(4,)), layers.Dense(3, dtype="float64")])
    m64.save(tmp_path / "m64.cynet")
    assert models.load_model(tmp_path / "m64.cynet").get_weights()[0].dtype == np.float64
    refused(load_model, rebuilt(tmp_path / "m64.cynet", tmp_path / "bad.cynet", replace={
        "weights/00000.npy": npy(m64.get_weights()[0].astype(np.float32))}), tmp_path, match="float64")


def test_big_endian_arrays_load(saved, tmp_path):
    model, path, wpath = saved
    replace = {f"weights/{i:05d}.npy": npy(w.astype(w.dtype.newbyteorder(">")))
               for i, w in enumerate(model.get_weights())}
    big = rebuilt(path, tmp_path / "big.cynet", replace=replace)
    loaded = models.load_model(big)
    same_weights(loaded.get_weights(), model.get_weights())


# ========================================================================================= hostile

class Payload:
    """Unpickling this creates the file `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled_npy(marker, shape):
    header = {"descr": "|O", "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    buf.write(npy_raw(repr(header)))
    pickle.dump([Payload(marker)], buf, protocol=2)
    return buf.getvalue()


@pytest.mark.parametrize("loader", LOADERS)
def test_pickle_payloads_are_never_unpickled(saved, tmp_path, loader):
    model, path, wpath = saved
    # The payload is live: numpy with allow_pickle=True would create the marker.
    probe_dir = tmp_path.parent / (tmp_path.name + "-probe")
    probe_dir.mkdir()
    probe_marker = probe_dir / "marker"
    np.load(io.BytesIO(pickled_npy(str(probe_marker), (4, 5))), allow_pickle=True)
    assert probe_marker.exists()
    marker = tmp_path / "PWNED"
    source = path if loader is load_model else wpath
    for name, shape in (("weights/00000.npy", (4, 5)), ("weights/00001.npy", (5,))):
        bad = rebuilt(source, tmp_path / ("evil" + source.name[source.name.index("."):]),
                      replace={name: pickled_npy(str(marker), shape)})
        refused(loader, bad, tmp_path, match="not plain numbers")
        assert not marker.exists()
    # A pickle where config.json should be.
    bad = with_config(source, tmp_path / ("evil2" + source.name[source.name.index("."):]),
                      pickle.dumps(Payload(str(marker))))
    refused(loader, bad, tmp_path, match="config.json")
    assert not marker.exists()


def peak_bytes(call):
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("loader", LOADERS)
def test_hostile_npy_headers_are_refused_without_allocating(saved, tmp_path, loader):
    model, path, wpath = saved
    source = path if loader is load_model else wpath
    suffix = source.name[source.name.index("."):]
    cases = [
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (10**12,), }", None, (1, 0), "damaged"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", None, (1, 0), "declares"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", None, (1, 0), "declares"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775813,), }", None, (1, 0), "shape"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2**64, 2**64), }", None, (1, 0), "damaged"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616, 3), }", None, (1, 0), "shape"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (4, True), }", None, (1, 0), "shape"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (-20,), }", None, (1, 0), "shape"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5), }", 2**32 - 1, (2, 0), "header"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5), }", 65535, (1, 0), "header"),
        ("{'descr': '<f4', 'fortran_order': 'yes', 'shape': (4, 5), }", None, (1, 0), "fortran_order"),
        ("{'descr': '<f4', 'fortran_order': 1, 'shape': (4, 5), }", None, (1, 0), "fortran_order"),
        ("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (4, 5), }", None, (1, 0),
         "not plain numbers"),
        ("{'descr': ('<f4', (100000, 100000)), 'fortran_order': False, 'shape': (4, 5), }", None, (1, 0),
         "not plain numbers|damaged"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 3000 + ")" * 3000 + "}", None, (1, 0),
         "damaged|header"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5), '__class__': 1}", None, (1, 0), "damaged"),
        ("__import__('os').system('touch PWNED')", None, (1, 0), "damaged"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5), }", None, (3, 0), "version"),
    ]
    for header, header_len, version, match in cases:
        member = npy_raw(header, b"\0" * 80, version=version, header_len=header_len)
        bad = rebuilt(source, tmp_path / ("hdr" + suffix), replace={"weights/00000.npy": member})
        peak = peak_bytes(lambda: refused(loader, bad, tmp_path, match=match))
        assert peak < 20 * 2**20, (header[:60], peak)
    assert not (tmp_path / "PWNED").exists() and not os.path.exists("PWNED")


def test_fortran_order_arrays(saved, tmp_path):
    model, path, wpath = saved
    kernel = model.get_weights()[0]  # (4, 5)
    # A Fortran-ordered array (as numpy writes one) is read with its true layout.
    fortran = rebuilt(wpath, tmp_path / "f.weights.npz", replace={"weights/00000.npy": npy(np.asfortranarray(kernel))})
    assert b"'fortran_order': True" in dict(members(fortran))["weights/00000.npy"][:128]
    fresh = architecture()
    fresh.load_weights(fortran)
    np.testing.assert_array_equal(fresh.get_weights()[0], kernel)
    # The transposed data claiming fortran_order with the transposed shape is a shape mismatch, not a silent transpose.
    bad = rebuilt(wpath, tmp_path / "t.weights.npz", replace={"weights/00000.npy": npy(np.asfortranarray(kernel.T))})
    refused(load_weights, bad, tmp_path, match=r"shape \(5, 4\)")
    # C-ordered bytes relabelled as Fortran load as the Fortran reading of those bytes (what the header says).
    member = dict(members(wpath))["weights/00000.npy"].replace(b"'fortran_order': False", b"'fortran_order': True ")
    relabelled = rebuilt(wpath, tmp_path / "r.weights.npz", replace={"weights/00000.npy": member})
    fresh.load_weights(relabelled)
    np.testing.assert_array_equal(fresh.get_weights()[0], kernel.ravel().reshape((4, 5), order="F"))


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("name", ["../evil", "../../evil.npy", "/abs", "/etc/passwd", "C:\\x", "C:x",
                                  "weights\\00000.npy", "weights/../config.json", "a/b/../../../c", "\\\\server\\x",
                                  "weights/00000.npy/..", "./config.json", "weights//00000.npy"])
def test_unsafe_or_unknown_member_names_are_refused(saved, tmp_path, loader, name):
    model, path, wpath = saved
    source = path if loader is load_model else wpath
    bad = rebuilt(source, tmp_path / ("names" + source.name[source.name.index("."):]), add=[(name, b"x" * 10)])
    refused(loader, bad, tmp_path, match="unsafe member name|unexpected member")
    assert not os.path.exists(tmp_path.parent / "evil") and not os.path.exists(tmp_path / "evil")
    # Renaming an expected member to an unsafe name is refused too.
    items = [(name if n == "weights/00000.npy" else n, d) for n, d in members(source)]
    refused(loader, write_zip(tmp_path / ("names2" + source.name[source.name.index("."):]), items), tmp_path,
            match="unsafe member name|unexpected member|missing")


@pytest.mark.parametrize("loader", LOADERS)
def test_unexpected_members_and_duplicates_are_refused(saved, tmp_path, loader):
    model, path, wpath = saved
    source = path if loader is load_model else wpath
    suffix = source.name[source.name.index("."):]
    items = members(source)
    weights0 = dict(items)["weights/00000.npy"]
    cases = [
        (items + [("config.json", json.dumps({"format": "cynet", "version": 1}).encode())], "twice"),
        (items + [("weights/00000.npy", npy(np.ones((4, 5), np.float32)))], "twice"),
        ([("weights/00000.npy", weights0)] + items, "twice"),
        (items + [("weights/00099.npy", weights0)], "unexpected member"),
        (items + [("weights/0000.npy", weights0)], "unexpected member"),
        (items + [("weights/000000.npy", weights0)], "unexpected member"),
        (items + [("readme.txt", b"hi")], "unexpected member"),
        ([(n, d) for n, d in items if n != "weights/00002.npy"], "missing weights/00002.npy"),
    ]
    for case, match in cases:
        refused(loader, write_zip(tmp_path / ("dup" + suffix), case), tmp_path, match=match)


@functools.lru_cache(maxsize=None)
def _deflated_bomb_member(name, declared, actual):
    """A deflated member whose central and local headers declare `declared` bytes but whose data
    inflates to `actual` bytes of spaces."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, b" " * actual)
    raw = bytearray(buf.getvalue())
    central = central_entries(bytes(raw))[name]
    struct.pack_into("<I", raw, central + 24, declared)  # uncompressed size, central directory
    struct.pack_into("<I", raw, 22, declared)  # uncompressed size, local header
    return bytes(raw)


@pytest.mark.parametrize("loader", LOADERS)
def test_zip_bombs_are_refused_without_inflating_them(saved, tmp_path, loader):
    model, path, wpath = saved
    source = path if loader is load_model else wpath
    suffix = source.name[source.name.index("."):]
    items = members(source)
    config_raw = dict(items)["config.json"]

    def archive(first, rest):
        """first: raw single-member zip bytes to merge before the other members of source."""
        out = tmp_path / ("bomb" + suffix)
        with zipfile.ZipFile(io.BytesIO(first)) as src_zip:
            info = src_zip.infolist()[0]
        buf = io.BytesIO(first)
        with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_STORED) as zf:
            for n, d in rest:
                zf.writestr(n, d)
        out.write_bytes(buf.getvalue())
        return out, info

    # config.json: declared small, inflates to 64 MB (data is read only up to the declared size, then the CRC fails).
    bomb, info = archive(_deflated_bomb_member("config.json", len(config_raw), 64 * 2**20),
                         [(n, d) for n, d in items if n != "config.json"])
    assert info.file_size == len(config_raw) and info.compress_size < 100 * 2**10
    assert peak_bytes(lambda: refused(loader, bomb, tmp_path, match="CRC")) < 5 * 2**20
    # config.json declared 200 MB: refused before reading.
    bomb, _ = archive(_deflated_bomb_member("config.json", 200 * 2**20, 2**20),
                      [(n, d) for n, d in items if n != "config.json"])
    assert peak_bytes(lambda: refused(loader, bomb, tmp_path, match="implausibly large")) < 5 * 2**20
    # An array member, deflated, declared small: cynet stores arrays uncompressed and refuses anything else.
    for declared in (100, 4 * 2**20):
        bomb, _ = archive(_deflated_bomb_member("weights/00000.npy", declared, 64 * 2**20),
                          [(n, d) for n, d in items if n != "weights/00000.npy"])
        assert peak_bytes(lambda: refused(loader, bomb, tmp_path, match="compressed")) < 5 * 2**20
    # A deflated but otherwise valid config.json is fine (hand-edited and re-zipped).
    items2 = [(zipfile.ZipInfo("config.json"), config_raw)]
    items2[0][0].compress_type = zipfile.ZIP_DEFLATED
    fine = tmp_path / ("deflated-config" + suffix)
    with zipfile.ZipFile(fine, "w") as zf:
        zf.writestr(items2[0][0], config_raw)
        for n, d in items:
            if n != "config.json":
                zf.writestr(n, d)
    loader(fine)


_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")


@functools.lru_cache(maxsize=None)
def many_members(n, data=b""):
    """(local headers and data, central directory) of a zip of n stored members holding `data`,
    named like cynet's arrays, written directly: zipfile.ZipFile.writestr would take seconds."""
    local, central, offset, crc = [], [], 0, zlib.crc32(data)
    for i in range(n):
        name = f"weights/{i:05d}.npy".encode()
        local.append(_LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 33, crc, len(data), len(data), len(name), 0)
                     + name + data)
        central.append(_CENTRAL.pack(b"PK\x01\x02", 20, 20, 0, 0, 0, 33, crc, len(data), len(data), len(name), 0,
                                     0, 0, 0, 0, offset) + name)
        offset += _LOCAL.size + len(name) + len(data)
    return b"".join(local), b"".join(central)


def many_member_zip(path, n, listed=None, zip64=None, cd_size=None, data=b""):
    """A zip of n members whose end record lists `listed` (default n) members in a central directory
    of `cd_size` bytes (default: its true size), with zip64 end records if `zip64` (default: when
    the count does not fit the 16-bit field, as zipfile writes it)."""
    body, central = many_members(n, data)
    listed = n if listed is None else listed
    cd_size = len(central) if cd_size is None else cd_size
    zip64 = listed > 0xFFFF if zip64 is None else zip64
    tail = b""
    if zip64:
        tail = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, listed, listed, cd_size, len(body))
        tail += struct.pack("<4sLQL", b"PK\x06\x07", 0, len(body) + len(central), 1)
    count16 = min(listed, 0xFFFF)
    tail += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count16, count16, min(cd_size, 0xFFFFFFFF),
                        0xFFFFFFFF if zip64 else len(body), 0)
    with open(path, "wb") as f:
        f.write(body)
        f.write(central)
        f.write(tail)
    return path


@pytest.fixture
def forget_member_tables():
    """Drop many_members' cached tables (tens of MiB) after the test."""
    yield
    many_members.cache_clear()


def test_the_many_member_zips_of_these_tests_are_valid_zips(tmp_path):
    for zip64 in (False, True):
        with zipfile.ZipFile(many_member_zip(tmp_path / "three.zip", 3, zip64=zip64, data=b"abc")) as zf:
            assert zf.namelist() == ["weights/00000.npy", "weights/00001.npy", "weights/00002.npy"]
            assert zf.testzip() is None


@pytest.mark.parametrize("loader", LOADERS)
def test_zips_listing_too_many_members_are_refused_before_zipfile_parses_them(tmp_path, loader,
                                                                              forget_member_tables):
    """zipfile parses every record of the central directory (about 500 bytes of memory each)
    whatever the end record's count says; cynet checks the end record, then walks the directory in
    bounded chunks, before handing the file to zipfile."""
    n = 200_000
    suffix = ".cynet" if loader is load_model else ".weights.npz"
    cases = {
        "honest zip64 count": (dict(), "lists 200000 members, more than the 131072"),
        "end record says 3": (dict(listed=3), "holds more than the 3 members its end-of-central-directory record"),
        "end record says 1000": (dict(listed=1000), "holds more than the 1000 members"),
        "zip64 record says 3": (dict(listed=3, zip64=True), "more than the 3 members its zip64 end-of-central"),
        "zip64 count 2**40": (dict(listed=2**40), "lists 1099511627776 members"),
        "zip64 count 2**64-1": (dict(listed=2**64 - 1), "lists 18446744073709551615 members"),
    }
    for case, (kwargs, match) in cases.items():
        path = many_member_zip(tmp_path / (case.replace(" ", "-") + suffix), n, **kwargs)
        assert os.path.getsize(path) > 20 * 2**20
        peak = peak_bytes(lambda: refused(loader, path, tmp_path, match=match))
        assert peak < 3 * 2**20, case


@pytest.mark.parametrize("loader", LOADERS)
def test_end_records_the_file_cannot_hold_are_refused(tmp_path, loader):
    suffix = ".cynet" if loader is load_model else ".weights.npz"
    bad = tmp_path / ("bad" + suffix)
    # More members than the file has bytes for (a member cynet can load takes at least 128 bytes).
    many_member_zip(bad, 3, listed=60000)
    refused(loader, bad, tmp_path, match="lists 60000 members, more than its [0-9]+ bytes can hold")
    many_member_zip(bad, 10000)  # honest, but ~110 bytes per member
    refused(loader, bad, tmp_path, match="lists 10000 members, more than its [0-9]+ bytes can hold")
    # A central directory larger than the file, or too small for its members.
    data = bytes(100)
    for cd_size in (2**31, 2**40, 3 * 46 - 1):
        many_member_zip(bad, 3, zip64=cd_size > 2**32, cd_size=cd_size, data=data)
        refused(loader, bad, tmp_path, match="central directory of [0-9]+ bytes cannot hold")
    # A directory whose stated size is not that of its records (zipfile reads it that many bytes
    # before the end record), or whose last record runs past its end.
    body, central = many_members(3, data)
    for cd_size in (len(central) + 40, len(central) - 5):
        many_member_zip(bad, 3, listed=4, cd_size=cd_size, data=data)
        refused(loader, bad, tmp_path, match="central directory has a bad record")
    raw = bytearray(many_member_zip(bad, 3, data=data).read_bytes())
    struct.pack_into("<H", raw, len(body) + 2 * (46 + 17) + 32, 10)  # the last record's comment length
    bad.write_bytes(bytes(raw))
    refused(loader, bad, tmp_path, match=f"central directory holds 3 members in {len(central) + 10} bytes")
    # A zip spanning several disks.
    raw = bytearray(many_member_zip(bad, 3, zip64=True, data=data).read_bytes())
    struct.pack_into("<L", raw, len(raw) - 22 - 20 + 4, 1)
    bad.write_bytes(bytes(raw))
    refused(loader, bad, tmp_path, match="several disks")


def test_zips_within_the_member_limit_reach_the_usual_checks(saved, tmp_path, forget_member_tables):
    """A zip64 directory of 70,000 members passes the end-record checks (and is then refused as
    not a cynet file); an archive comment does not hide the end record."""
    many = many_member_zip(tmp_path / "many.cynet", 70000, data=bytes(20))
    refused(load_model, many, tmp_path, match="looks like a NumPy .npz archive")
    model, path, wpath = saved
    for source in (path, wpath):
        commented = tmp_path / ("commented" + source.name[source.name.index("."):])
        with zipfile.ZipFile(source) as src, zipfile.ZipFile(commented, "w") as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info))
            dst.comment = b"an archive comment " * 1000
        if source == path:
            assert_intact(commented, model)
        else:
            architecture().load_weights(commented)


@pytest.mark.parametrize("loader", LOADERS)
def test_overlapping_or_out_of_file_members_are_refused(saved, tmp_path, loader):
    model, path, wpath = saved
    source = path if loader is load_model else wpath
    raw = bytearray(source.read_bytes())
    entries = central_entries(bytes(raw))
    with zipfile.ZipFile(source) as zf:
        offset0 = zf.getinfo("weights/00000.npy").header_offset
    # Two central records pointing at the same local data (a classic overlapping-entry bomb).
    overlapping = bytearray(raw)
    struct.pack_into("<I", overlapping, entries["weights/00001.npy"] + 42, offset0)
    bad = tmp_path / ("overlap" + source.name[source.name.index("."):])
    bad.write_bytes(bytes(overlapping))
    refused(loader, bad, tmp_path, match="overlap")
    # A member claiming more stored bytes than the file has.
    for field in (20, 24):  # compressed size, uncompressed size
        huge = bytearray(raw)
        struct.pack_into("<I", huge, entries["weights/00000.npy"] + field, 2**31)
        bad.write_bytes(bytes(huge))
        refused(loader, bad, tmp_path)


def _set(config, keys, value):
    target = config
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return config


L = ("model", "config", "layers")
HOSTILE_CONFIGS = {
    "root is a list": lambda c: [c],
    "root is a string": lambda c: "cynet",
    "format is an int": lambda c: _set(c, ("format",), 1),
    "version is a string": lambda c: _set(c, ("version",), "1"),
    "version is True": lambda c: _set(c, ("version",), True),
    "version is 1.0": lambda c: _set(c, ("version",), 1.0),
    "version is 2": lambda c: _set(c, ("version",), 2),
    "n_weights is a string": lambda c: _set(c, ("n_weights",), "8"),
    "n_weights is True": lambda c: _set(c, ("n_weights",), True),
    "n_weights is negative": lambda c: _set(c, ("n_weights",), -1),
    "n_weights is huge": lambda c: _set(c, ("n_weights",), 10**12),
    "n_weights is 7": lambda c: _set(c, ("n_weights",), 7),
    "n_optimizer_variables is a list": lambda c: _set(c, ("n_optimizer_variables",), [1]),
    "n_optimizer_variables is too small": lambda c: _set(c, ("n_optimizer_variables",), 3),
    "optimizer_built_on is a string": lambda c: _set(c, ("optimizer_built_on",), "0,1"),
    "optimizer_built_on is a dict": lambda c: _set(c, ("optimizer_built_on",), {"0": 0}),
    "optimizer_built_on holds True": lambda c: _set(c, ("optimizer_built_on",), [True, 1, 2, 3, 6, 7]),
    "optimizer_built_on holds a float": lambda c: _set(c, ("optimizer_built_on",), [0.0, 1, 2, 3, 6, 7]),
    "optimizer_built_on holds a negative": lambda c: _set(c, ("optimizer_built_on",), [-8, 1, 2, 3, 6, 7]),
    "optimizer_built_on out of range": lambda c: _set(c, ("optimizer_built_on",), [0, 1, 2, 3, 6, 8]),
    "optimizer_built_on huge": lambda c: _set(c, ("optimizer_built_on",), [10**30]),
    "optimizer_built_on duplicate": lambda c: _set(c, ("optimizer_built_on",), [0, 0, 2, 3, 6, 7]),
    "optimizer_built_on too long": lambda c: _set(c, ("optimizer_built_on",), list(range(9))),
    "optimizer_built_on shorter": lambda c: _set(c, ("optimizer_built_on",), c["optimizer_built_on"][:-1]),
    "optimizer_built_on reversed": lambda c: _set(c, ("optimizer_built_on",), c["optimizer_built_on"][::-1]),
    "optimizer_built_on null": lambda c: _set(c, ("optimizer_built_on",), None),
    "optimizer_built_on moving stats": lambda c: _set(c, ("optimizer_built_on",), [0, 1, 2, 3, 4, 5]),
    "optimizer_built_on with amsgrad": lambda c: _set(c, ("compile", "optimizer", "config", "amsgrad"), True),
    "model is a list": lambda c: _set(c, ("model",), [c["model"]]),
    "model class is os.system": lambda c: _set(c, ("model", "class_name"), "os.system"),
    "model class is __import__": lambda c: _set(c, ("model", "class_name"), "__import__"),
    "model config is a list": lambda c: _set(c, ("model", "config"), []),
    "model config is a string": lambda c: _set(c, ("model", "config"), "os"),
    "layers is a dict": lambda c: _set(c, L, {"0": c["model"]["config"]["layers"][0]}),
    "layers is a string": lambda c: _set(c, L, "Dense"),
    "layers is null": lambda c: _set(c, L, None),
    "too many layers": lambda c: _set(c, L, c["model"]["config"]["layers"][:1] + [
        {"class_name": "ReLU", "config": {"name": f"r{i}"}} for i in range(MAX_LAYERS + 1)]),
    "a layer is a list": lambda c: _set(c, L + (1,), [1, 2]),
    "a layer is a string": lambda c: _set(c, L + (1,), "Dense"),
    "layer class os.system": lambda c: _set(c, L + (1, "class_name"), "os.system"),
    "layer class __import__": lambda c: _set(c, L + (1, "class_name"), "__import__"),
    "layer class eval": lambda c: _set(c, L + (1, "class_name"), "eval"),
    "layer class builtins.exec": lambda c: _set(c, L + (1, "class_name"), "builtins.exec"),
    "layer class Sequential": lambda c: _set(c, L + (1, "class_name"), "Sequential"),
    "layer class Layer": lambda c: _set(c, L + (1, "class_name"), "Layer"),
    "layer class lowercase": lambda c: _set(c, L + (1, "class_name"), "dense"),
    "layer class is a list": lambda c: _set(c, L + (1, "class_name"), ["Dense"]),
    "layer class is a dict": lambda c: _set(c, L + (1, "class_name"), {"a": 1}),
    "layer config is a list": lambda c: _set(c, L + (1, "config"), [5]),
    "units is a string": lambda c: _set(c, L + (1, "config", "units"), "5"),
    "units is a float": lambda c: _set(c, L + (1, "config", "units"), 5.5),
    "units is negative": lambda c: _set(c, L + (1, "config", "units"), -5),
    "units is null": lambda c: _set(c, L + (1, "config", "units"), None),
    "units is a list": lambda c: _set(c, L + (1, "config", "units"), [5]),
    "units is 6": lambda c: _set(c, L + (1, "config", "units"), 6),
    "unknown layer kwarg": lambda c: _set(c, L + (1, "config", "__class__"), "os.system"),
    "name is an int": lambda c: _set(c, L + (1, "config", "name"), 123),
    "duplicate layer names": lambda c: _set(c, L + (3, "config", "name"), "hidden"),
    "dtype os.system": lambda c: _set(c, L + (1, "config", "dtype"), "os.system"),
    "dtype object": lambda c: _set(c, L + (1, "config", "dtype"), "object"),
    "dtype is a list": lambda c: _set(c, L + (1, "config", "dtype"), ["float32"]),
    "activation os.system": lambda c: _set(c, L + (1, "config", "activation"), "os.system"),
    "activation is a dict": lambda c: _set(c, L + (1, "config", "activation"), {"class_name": "os.system"}),
    "initializer __import__": lambda c: _set(c, L + (1, "config", "kernel_initializer"),
                                             {"class_name": "__import__", "config": {"name": "os"}}),
    "initializer config is a list": lambda c: _set(c, L + (1, "config", "kernel_initializer"),
                                                   {"class_name": "GlorotUniform", "config": [1]}),
    "initializer bad kwarg": lambda c: _set(c, L + (1, "config", "kernel_initializer"),
                                            {"class_name": "GlorotUniform", "config": {"system": "ls"}}),
    "regularizer os.system": lambda c: _set(c, L + (1, "config", "kernel_regularizer"), "os.system"),
    "regularizer is a number": lambda c: _set(c, L + (1, "config", "kernel_regularizer"), 3),
    "input shape strings": lambda c: _set(c, L + (0, "config", "shape"), ["a"]),
    "input shape negative": lambda c: _set(c, L + (0, "config", "shape"), [-4]),
    "input shape null": lambda c: _set(c, L + (0, "config", "shape"), None),
    "input shape 3": lambda c: _set(c, L + (0, "config", "shape"), [3]),
    "input layer twice": lambda c: _set(c, L + (2,), c["model"]["config"]["layers"][0]),
    "no input shape": lambda c: _set(_set(c, L, c["model"]["config"]["layers"][1:]),
                                     ("model", "config", "build_input_shape"), None),
    "build_input_shape string": lambda c: _set(_set(c, L, c["model"]["config"]["layers"][1:]),
                                               ("model", "config", "build_input_shape"), "abc"),
    "build_input_shape int": lambda c: _set(_set(c, L, c["model"]["config"]["layers"][1:]),
                                            ("model", "config", "build_input_shape"), 4),
    "bn axis string": lambda c: _set(c, L + (2, "config", "axis"), "x"),
    "bn momentum string": lambda c: _set(c, L + (2, "config", "momentum"), "x"),
    "compile is a list": lambda c: _set(c, ("compile",), ["adam"]),
    "compile is a string": lambda c: _set(c, ("compile",), "adam"),
    "optimizer os.system": lambda c: _set(c, ("compile", "optimizer"), "os.system"),
    "optimizer class __import__": lambda c: _set(c, ("compile", "optimizer"), {"class_name": "__import__",
                                                                                "config": {"name": "os"}}),
    "optimizer config list": lambda c: _set(c, ("compile", "optimizer", "config"), [1]),
    "optimizer lr string": lambda c: _set(c, ("compile", "optimizer", "config", "learning_rate"), "os.system"),
    "optimizer lr schedule os.system": lambda c: _set(c, ("compile", "optimizer", "config", "learning_rate"),
                                                      {"class_name": "os.system", "config": {}}),
    "optimizer is another class": lambda c: _set(c, ("compile", "optimizer", "class_name"), "SGD"),
    "optimizer missing": lambda c: _set(c, ("compile",), {"loss": None}),
    "loss os.system": lambda c: _set(c, ("compile", "loss"), {"class_name": "os.system", "config": {}}),
    "loss is an int": lambda c: _set(c, ("compile", "loss"), 5),
    "loss string unknown": lambda c: _set(c, ("compile", "loss"), "os.system"),
    "loss config list": lambda c: _set(c, ("compile", "loss", "config"), [1]),
    "metrics is a string": lambda c: _set(c, ("compile", "metrics"), "accuracy"),
    "metrics holds a dict": lambda c: _set(c, ("compile", "metrics"), [{"class_name": "os.system"}]),
    "metrics unknown": lambda c: _set(c, ("compile", "metrics"), ["os.system"]),
    "nested list as initializer seed": lambda c: _set(c, L + (1, "config", "kernel_initializer"),
                                                      {"class_name": "GlorotUniform",
                                                       "config": {"seed": json.loads("[" * 400 + "]" * 400)}}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS))
def test_configs_with_wrong_types_or_foreign_classes_are_refused(saved, tmp_path, monkeypatch, case):
    model, path, _ = saved
    calls = []
    for fn in ("system", "popen", "execv", "execve", "spawnv"):
        if hasattr(os, fn):
            monkeypatch.setattr(os, fn, lambda *a, _fn=fn, **k: calls.append((_fn, a)))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append(("Popen", a)))
    config = HOSTILE_CONFIGS[case](copy.deepcopy(config_of(path)))
    bad = with_config(path, tmp_path / "hostile.cynet", config)
    err = refused(load_model, bad, tmp_path)
    assert calls == []
    if case == "no input shape":
        assert "no input shape" in str(err)


@pytest.mark.parametrize("raw", [
    b"[" * 100000 + b"]" * 100000,
    b'{"format": "cynet", "version": 1, "n_weights": 8, "model": ' + b'{"a": ' * 50000 + b"1" + b"}" * 50001,
    b'{"format": "cynet", "version": 1, "n_weights": 8, "model": {"class_name": "Sequential", "config": '
    b'{"layers": [' + b"[" * 990 + b"]" * 990 + b"]}}}",
    b'{"format": "cynet", "version": 1, "n_weights": 99999999999999999999999999999999999999999999}',
    b'{"format": "cynet", "version": 1, "n_weights": ' + b"9" * 5000 + b"}",
    b'{"format": "cynet", "version": NaN}',
    b"\xff\xfe{}",
    b"",
    b"null",
], ids=["deep-list", "deep-dict", "deep-layer", "huge-int", "5000-digit-int", "nan", "bad-utf8", "empty", "null"])
@pytest.mark.parametrize("loader", LOADERS)
def test_config_json_that_is_malformed_or_too_deep_is_refused(saved, tmp_path, raw, loader):
    model, path, wpath = saved
    source = path if loader is load_model else wpath
    bad = with_config(source, tmp_path / ("deep" + source.name[source.name.index("."):]), raw)
    refused(loader, bad, tmp_path)


BIG = "refused before allocating"
# Sizes past what a layer accepts at all may be refused by the layer's own argument checks instead.
BIG_OR_INVALID = "refused before allocating|units|shape"


@pytest.mark.parametrize("layer_index, replacement, match", [
    (1, {"class_name": "Dense", "config": {"name": "hidden", "units": 10**6}}, BIG),
    (1, {"class_name": "Dense", "config": {"name": "hidden", "units": 2**31 - 1}}, BIG),
    (1, {"class_name": "Dense", "config": {"name": "hidden", "units": 10**12}}, BIG_OR_INVALID),
    (1, {"class_name": "Dense", "config": {"name": "hidden", "units": 10**30}}, BIG_OR_INVALID),
    (1, {"class_name": "Embedding", "config": {"name": "hidden", "input_dim": 10**9, "output_dim": 1000}}, BIG),
    (0, {"class_name": "InputLayer", "config": {"name": "input", "shape": [2**30]}}, BIG),
    (0, {"class_name": "InputLayer", "config": {"name": "input", "shape": [10**12]}}, BIG_OR_INVALID),
    (0, {"class_name": "InputLayer", "config": {"name": "input", "shape": [2**40, 2**40]}}, BIG_OR_INVALID),
])
def test_enormous_layers_are_refused_before_allocating(saved, tmp_path, layer_index, replacement, match):
    model, path, _ = saved
    config = config_of(path)
    config["model"]["config"]["layers"][layer_index] = replacement
    bad = with_config(path, tmp_path / "huge.cynet", config)
    peak = peak_bytes(lambda: refused(load_model, bad, tmp_path, match=match))
    assert peak < 5 * 2**20, peak  # the model's own weights are a few hundred bytes; 10**6 units would be 16 MB


def test_swapped_shapes_with_the_same_byte_count_are_refused_before_allocating(saved, tmp_path):
    model, path, _ = saved
    # 4 inputs x 5 units == 5 x 4: same bytes, other shapes.
    config = config_of(path)
    config["model"]["config"]["layers"][0]["config"]["shape"] = [5]
    config["model"]["config"]["layers"][1]["config"]["units"] = 4
    refused(load_model, with_config(path, tmp_path / "swap.cynet", config), tmp_path, match=r"needs \(5, 4\)")


def test_partial_files_are_not_checkpoints(saved, tmp_path):
    model, path, _ = saved
    partial = tmp_path / f".model.cynet.tmp-{os.getpid()}@host.abc123.partial"
    partial.write_bytes(path.read_bytes())  # even a complete copy: it is not the checkpoint
    refused(load_model, partial, tmp_path, match="interrupted save")
    assert sorted(p.name for p in tmp_path.glob("*.cynet")) == ["model.cynet"]


# ================================================================================= atomic saving

def _arm(monkeypatch, fail_at, exc, mid_member=True):
    """Make zipfile's writestr raise `exc` on its fail_at-th call, after writing half of that member."""
    calls = []
    original = zipfile.ZipFile.writestr

    def flaky(self, name, data, *args, **kwargs):
        calls.append(name)
        if len(calls) == fail_at:
            if mid_member:
                with self.open(name, "w") as dest:
                    dest.write(data[: len(data) // 2])
                    raise exc
            raise exc
        return original(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", flaky)
    return calls


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")],
                         ids=["KeyboardInterrupt", "ENOSPC"])
@pytest.mark.parametrize("fail_at", [1, 3, 9])
@pytest.mark.parametrize("mid_member", [True, False])
@pytest.mark.parametrize("kind", ["save", "save_weights"])
def test_an_interrupted_save_leaves_the_previous_file_and_no_temp_file(tmp_path, monkeypatch, exc, fail_at,
                                                                       mid_member, kind):
    old, new = trained(seed=0), trained(seed=1)
    path = tmp_path / ("ckpt.cynet" if kind == "save" else "ckpt.weights.npz")
    getattr(old, kind)(path)
    previous = path.read_bytes()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    calls = _arm(monkeypatch, fail_at, exc, mid_member)
    with pytest.raises(type(exc)) as info:
        getattr(new, kind)(path)
    assert len(calls) == fail_at  # the failure struck where intended
    if isinstance(exc, OSError):
        assert info.value.errno == errno.ENOSPC
        assert any(str(path) in note for note in getattr(info.value, "__notes__", [str(path)]))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [path.name]
    assert path.read_bytes() == previous and stat.S_IMODE(os.stat(path).st_mode) == mode
    if kind == "save":
        assert_intact(path, old)
    else:
        fresh = architecture()
        fresh.load_weights(path)
        same_weights(fresh.get_weights(), old.get_weights())
    # And the next save goes through.
    getattr(new, kind)(path)
    assert os.listdir(tmp_path) == [path.name]


CHILD_PRELUDE = """
import os, signal, sys, time, zipfile
import numpy as np
from cynet import layers, models, utils
utils.set_random_seed(3)
model = models.Sequential([layers.Input(shape=(512,)), layers.Dense(2048), layers.Dense(512)])  # 16 MB of weights
path = sys.argv[1]
"""


def _run_child(body, *args, timeout=120):
    code = textwrap.dedent(CHILD_PRELUDE) + textwrap.dedent(body)
    # -P and cwd: import the installed cynet, never a checkout that happens to be the working directory.
    return subprocess.run([sys.executable, "-P", "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=os.path.dirname(str(args[0])))


def test_a_save_that_hits_a_real_write_error_leaves_the_previous_file(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse writes past 1 MB partway through a member (EFBIG)."""
    pytest.importorskip("resource")
    old = trained()
    path = tmp_path / "big.cynet"
    old.save(path)
    previous = path.read_bytes()
    result = _run_child("""
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            model.save(path)
        except OSError as exc:
            print("ERRNO", exc.errno)
        else:
            print("SAVED")
    """, path)
    assert f"ERRNO {errno.EFBIG}" in result.stdout, result.stdout + result.stderr
    assert os.listdir(tmp_path) == ["big.cynet"]
    assert path.read_bytes() == previous
    assert_intact(path, old)


def test_a_process_killed_mid_save_leaves_the_previous_file_and_a_partial_the_next_save_removes(tmp_path):
    old = trained()
    path = tmp_path / "big.cynet"
    old.save(path)
    previous = path.read_bytes()
    ready = tmp_path.parent / (tmp_path.name + "-ready")
    proc = subprocess.Popen([sys.executable, "-P", "-c", textwrap.dedent(CHILD_PRELUDE) + textwrap.dedent("""
        original = zipfile.ZipFile.writestr
        def slow(self, name, data, *a, **k):
            original(self, name, data, *a, **k)
            if name == "weights/00000.npy":  # 4 MB written: stop here until killed
                self.fp.flush()
                open(sys.argv[2], "w").close()
                time.sleep(120)
        zipfile.ZipFile.writestr = slow
        model.save(path)
    """), str(path), str(ready)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never reached the middle of its save"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The checkpoint is the previous one, byte for byte.
    assert path.read_bytes() == previous
    assert_intact(path, old)
    # The killed process left its temporary file: hidden, not a checkpoint name, refused by the loaders.
    partials = [n for n in os.listdir(tmp_path) if n != "big.cynet"]
    assert len(partials) == 1
    partial = partials[0]
    assert partial.startswith(f".big.cynet.tmp-{proc.pid}@") and partial.endswith(".partial")
    assert os.path.getsize(tmp_path / partial) > 4 * 2**20
    assert [p.name for p in tmp_path.glob("*.cynet")] == ["big.cynet"]
    refused(load_model, tmp_path / partial, tmp_path, match="interrupted save")
    refused(load_weights, tmp_path / partial, tmp_path, match="interrupted save")
    # Partials of live processes and of other targets are left alone; the dead process's one goes at the next save.
    live = partial.replace(f"-{proc.pid}@", f"-{os.getpid()}@")
    other_target = partial.replace(".big.cynet.", ".other.cynet.")
    for name in (live, other_target):
        (tmp_path / name).write_bytes(b"x")
    new = trained(seed=5)
    new.save(path)
    assert sorted(os.listdir(tmp_path)) == sorted(["big.cynet", live, other_target])
    assert_intact(path, new)


# ======================================================================================= symlinks

def test_saving_over_a_symlink_replaces_the_link_not_its_target(tmp_path):
    a, b = trained(seed=0), trained(seed=1)
    real = tmp_path / "real.cynet"
    a.save(real)
    before = real.read_bytes()
    link = tmp_path / "latest.cynet"
    link.symlink_to(real.name)
    assert_intact(link, a)  # loading follows the link
    b.save(link)
    assert not link.is_symlink() and link.is_file()
    assert real.read_bytes() == before  # the file the link pointed to is untouched
    assert_intact(link, b)
    assert_intact(real, a)
    # A dangling link is replaced the same way; nothing is created where it pointed.
    dangling = tmp_path / "dangling.cynet"
    dangling.symlink_to(tmp_path / "nowhere" / "x.cynet")
    b.save(dangling)
    assert dangling.is_file() and not dangling.is_symlink() and not (tmp_path / "nowhere").exists()
    # overwrite=False treats a link as an existing file.
    link2 = tmp_path / "link2.cynet"
    link2.symlink_to(real.name)
    with pytest.raises(FileExistsError):
        b.save(link2, overwrite=False)
    assert link2.is_symlink() and real.read_bytes() == before


def test_save_refuses_directories_missing_directories_and_existing_files_without_overwrite(tmp_path):
    model = trained()
    (tmp_path / "d.cynet").mkdir()
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path / "d.cynet")
    (tmp_path / "dirlink.cynet").symlink_to(tmp_path / "d.cynet")
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path / "dirlink.cynet")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        model.save(tmp_path / "missing" / "m.cynet")
    model.save(tmp_path / "m.cynet")
    previous = (tmp_path / "m.cynet").read_bytes()
    with pytest.raises(FileExistsError):
        trained(seed=1).save(tmp_path / "m.cynet", overwrite=False)
    model.save_weights(tmp_path / "m.weights.npz")
    with pytest.raises(FileExistsError):
        trained(seed=1).save_weights(tmp_path / "m.weights.npz", overwrite=False)
    assert (tmp_path / "m.cynet").read_bytes() == previous
    model.save(tmp_path / "n.cynet", overwrite=False)
    assert_intact(tmp_path / "n.cynet", model)
    assert sorted(os.listdir(tmp_path)) == ["d.cynet", "dirlink.cynet", "m.cynet", "m.weights.npz", "n.cynet"]


# =============================================================================== ModelCheckpoint

class Boom(callbacks.Callback):
    def __init__(self, epoch, batch, exc):
        super().__init__()
        self.at, self.exc, self.epoch = (epoch, batch), exc, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise self.exc


class Snapshots(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = [w.copy() for w in self.model.get_weights()]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()], ids=["RuntimeError", "KeyboardInterrupt"])
def test_model_checkpoint_files_stay_intact_when_training_raises_mid_epoch(tmp_path, exc):
    model = trained()
    snaps = Snapshots()
    latest = callbacks.ModelCheckpoint(tmp_path / "latest.cynet")
    per_epoch = callbacks.ModelCheckpoint(tmp_path / "w-{epoch}.weights.npz", save_weights_only=True)
    with pytest.raises(type(exc)):
        model.fit(X, Y, epochs=5, batch_size=4, verbose=0, callbacks=[latest, per_epoch, snaps, Boom(2, 3, exc)])
    assert sorted(os.listdir(tmp_path)) == ["latest.cynet", "w-1.weights.npz", "w-2.weights.npz"]
    loaded = models.load_model(tmp_path / "latest.cynet")
    same_weights(loaded.get_weights(), snaps.by_epoch[1])
    for epoch in (0, 1):
        fresh = architecture()
        fresh.load_weights(tmp_path / f"w-{epoch + 1}.weights.npz")
        same_weights(fresh.get_weights(), snaps.by_epoch[epoch])
    loaded.fit(X, Y, epochs=1, verbose=0)  # and training resumes from it


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["ENOSPC", "KeyboardInterrupt"])
def test_model_checkpoint_keeps_the_previous_file_when_a_save_fails_during_training(tmp_path, monkeypatch, exc):
    model = trained()
    path = tmp_path / "ckpt.cynet"
    ckpt = callbacks.ModelCheckpoint(path, save_freq=2)
    model.fit(X, Y, epochs=1, batch_size=4, verbose=0, callbacks=[ckpt])  # 6 batches: saves after 2, 4, 6
    previous = path.read_bytes()
    saved_weights = models.load_model(path).get_weights()
    calls = _arm(monkeypatch, 4, exc)  # mid-way through the next checkpoint's members
    with pytest.raises(type(exc)):
        model.fit(X, Y, epochs=1, batch_size=4, verbose=0, callbacks=[ckpt])
    assert len(calls) == 4
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.cynet"]
    assert path.read_bytes() == previous
    same_weights(models.load_model(path).get_weights(), saved_weights)
