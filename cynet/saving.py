"""Model files: one zip holding `config.json` (architecture, compile settings) and the weights
(and optimizer state) as `.npy` members.

Loading never unpickles: every array member's header is checked (plain numeric dtype, the shape the
architecture expects, a size that fits the member) before it is read with allow_pickle=False;
classes come only from cynet's own registries; member names are never used as paths. Saving
writes a temporary file in the target directory and renames it over the target, so an interrupted
save leaves the previous file intact.
"""
import io
import json
import os
import tempfile
import zipfile

import numpy as np
from numpy.lib import format as npy_format

FORMAT = "cynet"
VERSION = 1
MODEL_EXT = ".cynet"
WEIGHTS_EXT = ".weights.npz"
MAX_CONFIG_BYTES = 16 * 2**20


class FileFormatError(ValueError):
    """A model or weights file that is damaged, hostile, or does not fit the model."""


def _check_ext(filepath, ext, what):
    path = os.fspath(filepath)
    if not path.endswith(ext):
        raise ValueError(f"{what} filepath must end in '{ext}'; received filepath={path!r}")
    return path


def _atomic_zip(path, overwrite, members):
    """Write members {name: bytes} into a zip at path via a temp file + rename."""
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, data in members:
                    zf.writestr(name, data)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _npy_bytes(array):
    buf = io.BytesIO()
    npy_format.write_array(buf, np.asarray(array, order="C"), allow_pickle=False)
    return buf.getvalue()


def _array_members(prefix, arrays):
    return [(f"{prefix}/{i:05d}.npy", _npy_bytes(a)) for i, a in enumerate(arrays)]


def _weights_payload(model):
    return _array_members("weights", model.get_weights())


def save_model(model, filepath, overwrite=True):
    """Save architecture, weights, compile settings and optimizer state to a `.cynet` file."""
    path = _check_ext(filepath, MODEL_EXT, "model")
    if not model.built:
        raise ValueError("the model must be built (called on data, or given an input shape) before it is saved")
    from . import optimizers
    config = {"format": FORMAT, "version": VERSION,
              "model": {"class_name": type(model).__name__, "config": model.get_config()},
              "compile": getattr(model, "_compile_config", None) if model.compiled else None,
              "n_weights": len(model.weights)}
    members = _weights_payload(model)
    opt = model.optimizer if model.compiled else None
    if opt is not None and opt.variables:
        config["compile"]["optimizer"] = optimizers.serialize(opt)
        config["n_optimizer_variables"] = len(opt.variables)
        members += _array_members("optimizer", [v.value for v in opt.variables])
    _atomic_zip(path, overwrite, [("config.json", json.dumps(config).encode())] + members)


def save_weights(model, filepath, overwrite=True):
    path = _check_ext(filepath, WEIGHTS_EXT, "weights")
    config = {"format": FORMAT + "-weights", "version": VERSION, "n_weights": len(model.weights)}
    _atomic_zip(path, overwrite, [("config.json", json.dumps(config).encode())] + _weights_payload(model))


def _open(path):
    try:
        zf = zipfile.ZipFile(os.fspath(path), "r")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileFormatError(f"{path} is not a cynet file (not a readable zip archive: {exc})") from None
    for info in zf.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
            zf.close()
            raise FileFormatError(f"{path} contains an unsafe member name {name!r}")
    return zf


def _read_config(zf, path, expected_format):
    try:
        info = zf.getinfo("config.json")
    except KeyError:
        raise FileFormatError(f"{path} has no config.json: not a cynet file") from None
    if info.file_size > MAX_CONFIG_BYTES:
        raise FileFormatError(f"{path}: config.json is implausibly large ({info.file_size} bytes)")
    try:
        config = json.loads(zf.read(info).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise FileFormatError(f"{path}: config.json is damaged ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != expected_format:
        raise FileFormatError(f"{path} is not a {expected_format} file")
    if config.get("version") != VERSION:
        raise FileFormatError(f"{path} has format version {config.get('version')!r}; this cynet reads {VERSION}")
    return config


def _read_array(zf, path, name, shape, dtype):
    """Read one .npy member after checking its header against the expected shape and dtype."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise FileFormatError(f"{path} is missing {name}") from None
    try:
        with zf.open(info) as f:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                header = npy_format.read_array_header_1_0(f, max_header_size=10000)
            elif version == (2, 0):
                header = npy_format.read_array_header_2_0(f, max_header_size=10000)
            else:
                raise FileFormatError(f"{path}: {name} has unsupported .npy version {version}")
            file_shape, fortran, file_dtype = header
            if file_dtype.hasobject or file_dtype.kind not in "biuf":
                raise FileFormatError(f"{path}: {name} holds dtype {file_dtype}, not plain numbers")
            if tuple(file_shape) != tuple(shape):
                raise FileFormatError(f"{path}: {name} has shape {tuple(file_shape)}, the model expects {tuple(shape)}")
            if int(np.prod(file_shape, dtype=np.int64)) * file_dtype.itemsize > info.file_size:
                raise FileFormatError(f"{path}: {name} is truncated")
            data = f.read(info.file_size)
    except FileFormatError:
        raise
    except (ValueError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise FileFormatError(f"{path}: {name} is damaged ({exc})") from None
    count = int(np.prod(file_shape, dtype=np.int64))
    if len(data) < count * file_dtype.itemsize:
        raise FileFormatError(f"{path}: {name} is truncated")
    arr = np.frombuffer(data, dtype=file_dtype, count=count)
    arr = arr.reshape(file_shape, order="F" if fortran else "C")
    return arr.astype(dtype, copy=True)


def _load_arrays(zf, path, prefix, variables):
    return [_read_array(zf, path, f"{prefix}/{i:05d}.npy", v.shape, v.dtype) for i, v in enumerate(variables)]


def load_model(filepath, compile=True):
    """Load a model saved with `model.save(...)`: same predictions, and (compiled) ready to continue training
    with its optimizer state."""
    from . import models
    path = os.fspath(filepath)
    with _open(path) as zf:
        config = _read_config(zf, path, FORMAT)
        spec = config.get("model")
        if not isinstance(spec, dict) or spec.get("class_name") != "Sequential":
            raise FileFormatError(f"{path}: unknown model class {spec.get('class_name') if isinstance(spec, dict) else spec!r}")
        try:
            model = models.Sequential.from_config(spec.get("config", {}))
        except (TypeError, ValueError, KeyError) as exc:
            raise FileFormatError(f"{path}: the architecture in config.json is invalid ({exc})") from None
        if not model.built:
            raise FileFormatError(f"{path}: the saved model has no input shape")
        if config.get("n_weights") != len(model.weights):
            raise FileFormatError(f"{path}: holds {config.get('n_weights')} weights, the architecture has {len(model.weights)}")
        for var, value in zip(model.weights, _load_arrays(zf, path, "weights", model.weights)):
            var.assign(value)
        compile_config = config.get("compile")
        if compile and compile_config:
            from . import losses, optimizers
            try:
                model.compile(optimizer=optimizers.deserialize(compile_config["optimizer"]),
                              loss=None if compile_config.get("loss") is None else losses.deserialize(compile_config["loss"]),
                              metrics=compile_config.get("metrics") or None,
                              weighted_metrics=compile_config.get("weighted_metrics") or None)
            except (TypeError, ValueError, KeyError) as exc:
                raise FileFormatError(f"{path}: the compile settings in config.json are invalid ({exc})") from None
            n_opt = config.get("n_optimizer_variables")
            if n_opt:
                model.optimizer.build(model.trainable_weights)
                if n_opt != len(model.optimizer.variables):
                    raise FileFormatError(f"{path}: optimizer state does not match the model")
                for var, value in zip(model.optimizer.variables,
                                      _load_arrays(zf, path, "optimizer", model.optimizer.variables)):
                    var.assign(value)
    return model


def load_weights(model, filepath):
    """Load weights saved by `save_weights` (or the weights inside a `.cynet` model file)."""
    path = os.fspath(filepath)
    with _open(path) as zf:
        expected = FORMAT if path.endswith(MODEL_EXT) else FORMAT + "-weights"
        config = _read_config(zf, path, expected)
        if not model.built:
            raise ValueError("build the model (call it on data or give it an input shape) before load_weights")
        if config.get("n_weights") != len(model.weights):
            raise FileFormatError(f"{path}: holds {config.get('n_weights')} weights, the model has {len(model.weights)}")
        values = _load_arrays(zf, path, "weights", model.weights)
    for var, value in zip(model.weights, values):
        var.assign(value)
