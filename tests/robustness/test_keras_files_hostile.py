"""Keras's file formats (.keras, .weights.h5, legacy .h5) under damage and attack: every refused
load raises a clear error (FileFormatError naming the file, or NotImplementedError / ValueError
naming what is unsupported), reads no data before the shapes and dtypes are checked, executes
nothing, and leaves the model it loads into untouched."""
import io
import json
import zipfile

import numpy as np
import pytest

from cynet import layers, models
from cynet.saving import FileFormatError

h5py = pytest.importorskip("h5py")
X = np.random.default_rng(0).random((8, 4)).astype("float32")


def mlp(units=5):
    return models.Sequential([layers.Input((4,)), layers.Dense(units, activation="relu", name="hidden"),
                              layers.BatchNormalization(name="bn"), layers.Dense(3, name="out")])


def snapshot(model):
    return [w.copy() for w in model.get_weights()]


def unchanged(model, before):
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def archive(tmp_path):
    model = mlp()
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, np.zeros((8, 3)), epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    return path


def rewrite(path, out, config=None, weights=None, drop=()):
    """A copy of the .keras archive at `path` with config.json / model.weights.h5 replaced or members dropped."""
    with zipfile.ZipFile(path) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    if config is not None:
        items["config.json"] = json.dumps(config(json.loads(items["config.json"]))).encode()
    if weights is not None:
        items["model.weights.h5"] = weights(items["model.weights.h5"])
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in items.items():
            if name not in drop:
                zf.writestr(name, data)
    return out


def edit_h5(data, edit):
    buf = io.BytesIO(data)
    with h5py.File(buf, "a") as f:
        edit(f)
    return buf.getvalue()


def dense_config(config):
    return next(e for e in config["config"]["layers"] if e["class_name"] == "Dense")


# ============================================================================ .weights.h5
@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "w.weights.h5"
    mlp().save_weights(path)
    return path


@pytest.mark.parametrize("keep", [0, 8, 100, 0.5, -1])
def test_a_truncated_weights_file_is_a_file_format_error(weights, tmp_path, keep):
    raw = weights.read_bytes()
    cut = tmp_path / "cut.weights.h5"
    cut.write_bytes(raw[:int(len(raw) * keep) if isinstance(keep, float) else keep if keep >= 0 else len(raw) - 1])
    model = mlp()
    before = snapshot(model)
    with pytest.raises(FileFormatError, match="cut.weights.h5"):
        model.load_weights(cut)
    unchanged(model, before)


def test_garbage_and_a_damaged_superblock_are_file_format_errors(weights, tmp_path):
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not an hdf5 file at all\n" * 50)
    with pytest.raises(FileFormatError, match="not a readable HDF5 file"):
        mlp().load_weights(bad)
    raw = bytearray(weights.read_bytes())
    for offset in (0, 9, 24, 40):
        damaged = bytearray(raw)
        damaged[offset] ^= 0xFF
        bad.write_bytes(bytes(damaged))
        with pytest.raises(FileFormatError):
            mlp().load_weights(bad)


def test_wrong_shapes_name_the_layer_and_both_shapes(weights):
    model = mlp(units=6)
    before = snapshot(model)
    with pytest.raises(FileFormatError, match=r"layer 'hidden'.*\(4, 5\).*\(4, 6\)"):
        model.load_weights(weights)
    unchanged(model, before)


def test_a_huge_declared_dataset_is_refused_before_any_data_is_read(tmp_path):
    path = tmp_path / "huge.weights.h5"
    mlp().save_weights(path)
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/0"]
        # 2**40 float32 declared, nothing stored (chunked, allocated lazily): reading it would need 4 TiB.
        f.create_dataset("layers/dense/vars/0", shape=(1 << 20, 1 << 20), dtype="f4", chunks=(1, 1))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(FileFormatError, match=r"\(1048576, 1048576\)"):
        mlp().load_weights(path)


def test_a_dataset_of_strings_or_a_group_in_place_of_a_variable_is_refused(tmp_path):
    path = tmp_path / "odd.weights.h5"
    for make in (lambda f: f.create_dataset("layers/dense/vars/1", data=np.array([b"x"] * 5)),
                 lambda f: f.create_group("layers/dense/vars/1")):
        mlp().save_weights(path)
        with h5py.File(path, "a") as f:
            del f["layers/dense/vars/1"]
            make(f)
        with pytest.raises(FileFormatError, match="variable 1 of layer 'hidden'"):
            mlp().load_weights(path)


def test_weights_of_another_model_are_refused(tmp_path):
    path = tmp_path / "other.weights.h5"
    models.Sequential([layers.Input((4,)), layers.Dense(5, name="hidden"), layers.Dense(3)]).save_weights(path)
    with pytest.raises(FileFormatError, match=r"no weights for layer 'bn' \(no group layers/batch_normalization"):
        mlp().load_weights(path)


def test_links_and_storage_outside_the_file_are_refused(tmp_path):
    """HDF5 can point a name into another file (external link) or keep a dataset's bytes in any file
    (external storage): reading either would pull another file's contents into the weights."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"s" * 64)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("k", data=np.zeros((4, 5), "f4"))
    path = tmp_path / "links.weights.h5"
    edits = [
        lambda f: f.__setitem__("layers/dense/vars/0", h5py.ExternalLink(str(other), "/k")),
        lambda f: f.__setitem__("layers/dense/vars/0", h5py.SoftLink("/layers/dense_1/vars/0")),
        lambda f: f.create_dataset("layers/dense/vars/0", shape=(4, 5), dtype="f4",
                                   external=[(str(secret), 0, 80)]),
    ]
    for edit, match in zip(edits, ["ExternalLink", "SoftLink", "outside this file"]):
        mlp().save_weights(path)
        with h5py.File(path, "a") as f:
            del f["layers/dense/vars/0"]
            edit(f)
        model = mlp()
        before = snapshot(model)
        with pytest.raises(FileFormatError, match=match):
            model.load_weights(path)
        unchanged(model, before)
    path = tmp_path / "legacy_links.h5"
    with h5py.File(path, "w") as f:          # the same in a legacy file's group
        f.attrs["layer_names"] = np.array([b"hidden"])
        f["hidden"] = h5py.ExternalLink(str(other), "/")
    with pytest.raises(FileFormatError, match="ExternalLink"):
        mlp().load_weights(path)


# ================================================================================= .keras
def test_an_archive_missing_members_is_refused(archive, tmp_path):
    for member in ("config.json", "model.weights.h5"):
        bad = rewrite(archive, tmp_path / f"no_{member}.keras", drop=(member,))
        with pytest.raises(FileFormatError, match=f"must hold {member}"):
            models.load_model(bad)
    not_zip = tmp_path / "plain.keras"
    not_zip.write_bytes(b"PK\x03\x04 but not a zip" * 10)
    with pytest.raises(FileFormatError):
        models.load_model(not_zip)


def test_an_unknown_layer_class_is_named(archive, tmp_path):
    def edit(config):
        dense_config(config)["class_name"] = "FancyDense2027"
        return config
    with pytest.raises(FileFormatError, match="'FancyDense2027'"):
        models.load_model(rewrite(archive, tmp_path / "new.keras", config=edit))


def test_an_unknown_argument_is_named(archive, tmp_path):
    def edit(config):
        dense_config(config)["config"]["flash_mode"] = "turbo"
        return config
    with pytest.raises(FileFormatError, match=r"flash_mode='turbo', an argument cynet's Dense does not support"):
        models.load_model(rewrite(archive, tmp_path / "arg.keras", config=edit))


def test_an_unknown_model_class_and_optimizer_are_named(archive, tmp_path):
    def model_class(config):
        return dict(config, class_name="MyResNet")
    with pytest.raises(FileFormatError, match="unknown model class 'MyResNet'"):
        models.load_model(rewrite(archive, tmp_path / "cls.keras", config=model_class))

    def optimizer(config):
        config["compile_config"]["optimizer"]["class_name"] = "Lion2"
        return config
    with pytest.raises(FileFormatError, match="'Lion2'"):
        models.load_model(rewrite(archive, tmp_path / "opt.keras", config=optimizer))


def test_a_lambda_layer_is_refused_in_safe_mode(archive, tmp_path):
    def edit(config):
        layer = dense_config(config)
        layer["class_name"] = "Lambda"
        layer["config"] = {"name": "evil", "function": {"class_name": "__lambda__", "config": {
            "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA", "defaults": None, "closure": None}}}
        return config
    bad = rewrite(archive, tmp_path / "lambda.keras", config=edit)
    with pytest.raises(ValueError, match="Lambda.*safe_mode"):
        models.load_model(bad)
    with pytest.raises(FileFormatError, match="Lambda layer.*never loads code"):
        models.load_model(bad, safe_mode=False)


def test_damaged_weights_inside_an_archive(archive, tmp_path):
    bad = rewrite(archive, tmp_path / "cut.keras", weights=lambda data: data[:len(data) // 2])
    with pytest.raises(FileFormatError, match="cut.keras"):
        models.load_model(bad)

    def wrong_shape(data):
        def edit(f):
            del f["layers/dense/vars/0"]
            f.create_dataset("layers/dense/vars/0", data=np.zeros((4, 7), "f4"))
        return edit_h5(data, edit)
    with pytest.raises(FileFormatError, match=r"layer 'hidden'.*\(4, 7\).*\(4, 5\)"):
        models.load_model(rewrite(archive, tmp_path / "shape.keras", weights=wrong_shape))

    def optimizer_slots(data):
        return edit_h5(data, lambda f: f.__delitem__("optimizer/vars/5"))
    with pytest.raises(FileFormatError, match="optimizer"):
        models.load_model(rewrite(archive, tmp_path / "opt.keras", weights=optimizer_slots))


def test_a_config_that_is_not_an_object_or_too_deep(archive, tmp_path):
    with pytest.raises(FileFormatError, match="JSON object"):
        models.load_model(rewrite(archive, tmp_path / "list.keras", config=lambda c: [c]))

    def deep(config):
        inner = {}
        for _ in range(500):
            inner = {"x": inner}
        config["config"]["extra"] = inner
        return config
    with pytest.raises(FileFormatError, match="levels deep"):
        models.load_model(rewrite(archive, tmp_path / "deep.keras", config=deep))


# ============================================================================= legacy .h5
def test_legacy_files_that_lie_are_refused(tmp_path):
    path = tmp_path / "legacy.h5"
    model = mlp()
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"hidden", b"missing"])
        g = f.create_group("hidden")
        g.attrs["weight_names"] = np.array([b"hidden/kernel:0", b"hidden/bias:0"])
        g.create_dataset("hidden/kernel:0", data=np.zeros((4, 5), "f4"))
        g.create_dataset("hidden/bias:0", data=np.zeros(5, "f4"))
    with pytest.raises(FileFormatError, match="'missing', which has no group"):
        model.load_weights(path)
    with pytest.raises(FileFormatError, match="no model_config"):
        models.load_model(path)
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = "{not json"
    with pytest.raises(FileFormatError, match="not valid JSON"):
        models.load_model(path)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"hidden", b"bn", b"out"])
        for name, shapes in (("hidden", [(1 << 20, 1 << 20), (5,)]), ("bn", [(5,)] * 4), ("out", [(5, 3), (3,)])):
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/w{i}:0".encode() for i in range(len(shapes))])
            for i, shape in enumerate(shapes):
                g.create_dataset(f"{name}/w{i}:0", shape=shape, dtype="f4", chunks=tuple(min(s, 1) for s in shape))
    before = snapshot(model)
    with pytest.raises(FileFormatError, match=r"layer 'hidden'.*\(1048576, 1048576\)"):
        model.load_weights(path)
    unchanged(model, before)
