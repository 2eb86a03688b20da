"""Keras 3's own files: `.weights.h5` (weights, and optimizer state in a model file) and `.keras`
archives (config.json + metadata.json + model.weights.h5), read and written in Keras's layout, so
a model trained with Keras loads in cynet and one trained with cynet loads in Keras.

The HDF5 layout (keras/src/saving/saving_lib.py's walk, reproduced here from its files): a model's
layers sit under `layers/<key>`, where the key is the snake_case of the layer's *class* name with
`_1`, `_2`, ... for repeats in the model's layer order (never the layer's name, which Keras keeps
only as the `name` attribute of the `vars` group); a layer's own variables are the datasets
`vars/0`, `vars/1`, ... (trainable first, then non-trainable); a layer's sub-objects sit under their
attribute names (an RNN's `cell`, Bidirectional's `forward_layer` / `backward_layer`, a nested
model's `layers`); a registered subclassed model's children are its public attributes and its
`layers` list in sorted order (a layer filed under the first that holds it; each object once);
the optimizer's variables are `optimizer/vars/<i>`: its iteration counter, its learning rate (when
it is a number), then its slots in the order it created them (only the first two before its first
step: it then stays unbuilt, in Keras and here).

config.json: Sequential and Functional models (nested ones included) are translated layer by layer
(DTypePolicy dicts to dtype names, module / registered_name dropped, InputLayer batch_shape to
shape + batch_size; back again on saving); a registered subclassed model is written as Keras writes
one (class name, "package>Name", its get_config(), build_config) and found on loading in cynet's
registry, never imported. A layer class or argument cynet does not have is an error naming it
(Keras-only arguments at the value that makes them do nothing are dropped); Lambda layers are
never loaded (refused in safe_mode with Keras's reason, and without it too).

What parses untrusted bytes: the zip's member table is vetted by cynet.saving's `_Archive` before
anything is extracted; config.json by Python's json (depth capped); the HDF5 file by h5py / the HDF5
C library, which parses the superblock, object headers and B-trees of the groups we open and the
dataset headers we read: every dataset's shape and dtype is checked against the model's variable
before its data is read, and nothing in the file names code to run (no pickle, no Lambda bytecode).
Only hard links are followed and only datasets stored in the file are read: a soft or external link,
or external / virtual dataset storage (which would pull another file's bytes in), is refused.
"""
import contextlib
import datetime
import inspect
import io
import json
import os
import re
from typing import Any

import numpy as np

from . import saving as _saving
from .saving import FileFormatError

KERAS_VERSION = "3.15.1"   # the Keras release whose layout this writes (and reads)
_MAX_ELEMENTS = 1 << 34    # refuse a declared dataset larger than this many elements before reading


def _h5py():
    try:
        import h5py
    except ImportError as exc:   # a declared dependency: only a broken install lands here
        raise ImportError("reading and writing Keras's .keras / .h5 files needs h5py (pip install h5py)") from exc
    return h5py


def keras_snake_case(name: str) -> str:
    """Keras's naming.to_snake_case: the container keys of its weight files."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# =========================================================================== the saveable tree
_RNN = ("SimpleRNN", "LSTM", "GRU")


def _own_variables(layer):
    return list(layer._trainable_vars) + list(layer._non_trainable_vars)


def _model_layers(model):
    """The model's layers as Keras lists them for saving (a Functional model's InputLayers included)."""
    return list(model.layers)


def _groups(obj, prefix, visited=None):
    """(path, name, [variables], object) for `obj` (a layer or model) and everything below it, in Keras's
    layout: one entry per `vars` group. As Keras does, an object met a second time (a shared layer)
    is skipped; a subclassed model's children are its public attributes and its `layers` list, in
    sorted order (so a layer is filed under the first of those that holds it)."""
    from .models.model import Model
    visited = set() if visited is None else visited
    if id(obj) in visited:
        return
    visited.add(id(obj))
    cls = type(obj).__name__
    if isinstance(obj, Model) and _is_graph_model(obj):
        yield prefix, obj.name, [], obj
        yield from _container(_model_layers(obj), _join(prefix, "layers"), visited)
        return
    if cls in _RNN:
        yield prefix, obj.name, [], obj
        yield _join(prefix, "cell"), keras_snake_case(cls) + "_cell", _own_variables(obj), None
        return
    yield prefix, obj.name, _own_variables(obj), obj
    children = dict(vars(obj))
    children.update(_layer_properties(obj))
    if isinstance(obj, Model):   # subclassed: private attributes hold nothing `layers` has not
        children = {k: v for k, v in children.items() if not k.startswith("_")}
        children["layers"] = list(obj.layers)
    for attr in sorted(children, key=lambda a: "~" + a if a.startswith("_") else a):
        value = children[attr]
        if _is_layer(value):
            yield from _groups(value, _join(prefix, attr), visited)
        elif isinstance(value, (list, tuple)) and value and all(_is_layer(v) for v in value):
            yield from _container(value, _join(prefix, attr), visited)


def _layer_properties(obj):
    """The public properties of obj's class that hold a layer: Keras walks dir(), so a sublayer kept
    in `_query_dense` and shown as the property `query_dense` is filed under the property's name
    (public names come first in its order)."""
    from .models.model import Model
    found = {}
    base = set(Model.__mro__)   # Model, its Trainer, Layer, object: their properties (weights, losses,
    for klass in type(obj).__mro__:   # metrics, ...) hold no sublayer
        if klass in base:
            continue
        for attr, value in vars(klass).items():
            if isinstance(value, property) and not attr.startswith("_") and attr not in found:
                try:
                    held = getattr(obj, attr)
                except Exception:   # a property that needs state the object lacks holds no sublayer
                    continue
                if _is_layer(held):
                    found[attr] = held
    return found


def _is_graph_model(model):
    from .models.functional import Functional
    from .models.sequential import Sequential
    return isinstance(model, (Sequential, Functional))


def _is_layer(value):
    from .layers.base import Layer
    return isinstance(value, Layer)


def _container(items, prefix, visited):
    """A list of layers: keys are their snake_case class names, counted over the whole list (those
    already saved elsewhere included, as Keras counts them)."""
    used = {}
    for layer in items:
        base = keras_snake_case(type(layer).__name__ if type(layer).__name__ != "Model" else "Functional")
        n = used.get(base, 0)
        used[base] = n + 1
        yield from _groups(layer, _join(prefix, base if n == 0 else f"{base}_{n}"), visited)


def _join(prefix, name):
    return f"{prefix}/{name}" if prefix else name


# ============================================================ lookup layers' vocabularies (state)
_LOOKUPS = ("StringLookup", "IntegerLookup", "TextVectorization")
_MAX_VOCABULARY_BYTES = 1 << 30


def _lookup_of(obj):
    """The index lookup holding obj's vocabulary (itself, or a TextVectorization's), or None."""
    if obj is None or type(obj).__name__ not in _LOOKUPS:
        return None
    return getattr(obj, "_lookup_layer", obj)


def _lookup_idf(obj):
    """The idf weights Keras keeps as the `idf_weights` variable of a tf_idf lookup (special tokens
    included), or None."""
    lookup = _lookup_of(obj)
    if lookup is None or lookup.output_mode != "tf_idf" or getattr(lookup, "_idf", None) is None:
        return None
    return np.asarray(lookup._idf[:lookup.vocabulary_size()], dtype=np.float32)


def _lookup_state(path, h5file, model, archive=None):
    """[(lookup, vocabulary or None, idf or None)] for the model's lookup layers, from where Keras
    keeps them: a vocabulary given to the layer is in config.json (already set); one made by adapt()
    is the text file assets/<layer path>/vocabulary.txt of a .keras archive (Keras's save_assets),
    one token a line; a tf_idf layer's idf weights are its `idf_weights` variable."""
    h5py = _h5py()
    found = []
    for gpath, name, _, obj in _groups(model, ""):
        lookup = _lookup_of(obj)
        if lookup is None:
            continue
        vocabulary = idf = None
        group = _get(path, h5file, _join(gpath, "vars"))
        if isinstance(group, h5py.Group) and "idf_weights" in group:
            ds = _get(path, group, "idf_weights")
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                raise FileFormatError(f"{path}: the idf weights of layer '{name}' are not a 1-D dataset")
            idf = _dataset(path, group, "idf_weights", ds.shape, f"the idf weights of layer '{name}'")[()]
        if archive is not None and not lookup._tokens:
            for where in (gpath, _join(gpath, "_lookup_layer")):
                member = f"assets/{where}/vocabulary.txt"
                if member in archive.infos:
                    vocabulary = _vocabulary_lines(path, archive.read_member(member, _MAX_VOCABULARY_BYTES),
                                                   lookup, name)
                    break
        if vocabulary is not None or idf is not None:
            found.append((obj, vocabulary, idf))
    return found


def _vocabularies_into_config(path, config, h5file, archive):
    """The adapted vocabularies (and tf_idf weights) of the top-level model's lookup layers put into
    their config entries before the model is built: a tf_idf lookup cannot be called (so not built
    into a model) before it has its vocabulary. Nested models' lookups get theirs after building."""
    h5py = _h5py()
    if config.get("class_name") not in ("Sequential", "Functional"):
        return
    entries = [e for e in (config.get("config") or {}).get("layers") or [] if isinstance(e, dict)]
    if config["class_name"] == "Sequential":
        entries = [e for e in entries if e.get("class_name") != "InputLayer"]
    used = {}
    for entry in entries:
        cls = entry.get("class_name")
        base = keras_snake_case(cls if isinstance(cls, str) and cls != "Model" else "Functional")
        n = used.get(base, 0)
        used[base] = n + 1
        body = entry.get("config")
        if cls not in _LOOKUPS or not isinstance(body, dict) or body.get("vocabulary") is not None:
            continue
        gpath = f"layers/{base if n == 0 else f'{base}_{n}'}"
        for where in (gpath, _join(gpath, "_lookup_layer")):
            member = f"assets/{where}/vocabulary.txt"
            if member in archive.infos:
                body["vocabulary"] = _vocabulary_lines(path, archive.read_member(member, _MAX_VOCABULARY_BYTES),
                                                       cls, body.get("name"))
                break
        group = _get(path, h5file, _join(gpath, "vars"))
        if body.get("vocabulary") is not None and isinstance(group, h5py.Group) and "idf_weights" in group \
                and body.get("idf_weights") is None:
            ds = _get(path, group, "idf_weights")
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                raise FileFormatError(f"{path}: the idf weights of layer '{body.get('name')}' are not a 1-D dataset")
            body["idf_weights"] = _dataset(path, group, "idf_weights", ds.shape,
                                           f"the idf weights of layer '{body.get('name')}'")[()].tolist()


def _vocabulary_lines(path, raw, lookup, name):
    """Keras's vocabulary.txt as tokens: lines (trailing empty ones dropped), integers for an
    IntegerLookup."""
    with _saving._reading(path, f"the vocabulary of layer '{name}' is not UTF-8 text"):
        lines = raw.decode("utf-8").splitlines()
    while lines and lines[-1] == "":
        lines.pop()
    if (lookup if isinstance(lookup, str) else type(lookup).__name__) == "IntegerLookup":
        with _saving._reading(path, f"the vocabulary of layer '{name}' holds a line that is not an integer"):
            return [int(line) for line in lines]
    return lines


def _set_lookups(path, found):
    for obj, vocabulary, idf in found:
        lookup = _lookup_of(obj)
        with _saving._reading(path, f"the vocabulary of layer '{obj.name}' does not fit it"):
            if vocabulary is None:   # given in the config: only the idf weights are Keras's variable
                vocabulary = lookup.get_vocabulary()
            if idf is not None and len(idf) != len(vocabulary):
                raise FileFormatError(f"{path}: layer '{obj.name}' has {len(idf)} idf weights for a vocabulary of "
                                      f"{len(vocabulary)}")
            obj.set_vocabulary(vocabulary, idf_weights=None if idf is None else np.asarray(idf, np.float64))


# ======================================================================== optimizer variables
def _optimizer_arrays(opt):
    """The optimizer's variables in Keras's order: iterations, learning rate (a number), slots."""
    variables = [v.value for v in opt.variables]
    lr = getattr(opt, "_learning_rate", None)
    arrays = variables[:1]
    if not callable(lr):
        arrays.append(np.asarray(opt.learning_rate, dtype=np.float32))
    return arrays + variables[1:]


# =============================================================================== HDF5 weights
def _write_h5(h5file, model, with_optimizer):
    for path, name, variables, obj in _groups(model, ""):
        group = h5file.require_group(_join(path, "vars"))
        group.attrs["name"] = name
        for i, v in enumerate(variables):
            group.create_dataset(str(i), data=np.asarray(v.value))
        idf = _lookup_idf(obj)
        if idf is not None:
            group.create_dataset("idf_weights", data=idf)
    opt = getattr(model, "optimizer", None) if with_optimizer and getattr(model, "compiled", False) else None
    if opt is not None:   # unbuilt (no step taken yet): its iteration counter and learning rate, as Keras writes
        group = h5file.require_group("optimizer/vars")
        group.attrs["name"] = opt.name
        for i, a in enumerate(_optimizer_arrays(opt)):
            group.create_dataset(str(i), data=a)


def _h5_bytes(model, with_optimizer):
    h5py = _h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        _write_h5(f, model, with_optimizer)
    return buf.getvalue()


def _get(path, group, key):
    """group[key] reached through hard links only, or None when absent: a soft or external link
    (which HDF5 would follow, into another file) is refused."""
    h5py = _h5py()
    obj = group
    for part in [p for p in key.split("/") if p]:
        if not isinstance(obj, h5py.Group):
            return None
        link = obj.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise FileFormatError(f"{path}: {obj.name.rstrip('/')}/{part} is a {type(link).__name__} (it points "
                                  "elsewhere, possibly into another file): refused")
        obj = obj[part]
    return obj


def _dataset(path, group, key, expected_shape, what):
    """group[key] checked to be a numeric dataset of `expected_shape` stored in this file (header
    only: no data read)."""
    h5py = _h5py()
    obj = _get(path, group, key)
    if not isinstance(obj, h5py.Dataset):
        raise FileFormatError(f"{path}: {what} is missing (no dataset {group.name}/{key})")
    if obj.external or obj.is_virtual:
        raise FileFormatError(f"{path}: {what} ({obj.name}) keeps its data outside this file (external or virtual "
                              "storage): refused")
    if obj.dtype.kind not in "biuf" or obj.dtype.itemsize > 8:
        raise FileFormatError(f"{path}: {what} ({group.name}/{key}) has dtype {obj.dtype}, not a real number type")
    if tuple(obj.shape) != tuple(expected_shape):
        raise FileFormatError(f"{path}: {what} ({group.name}/{key}) has shape {tuple(obj.shape)}, the model's "
                              f"variable has shape {tuple(expected_shape)}")
    if int(np.prod(obj.shape, dtype=np.float64)) > _MAX_ELEMENTS:
        raise FileFormatError(f"{path}: {what} declares {obj.shape}, too large to read")
    return obj


def _read_layer_values(path, h5file, model):
    """[(variable, array)] of every model variable from the file, all checked before any is assigned."""
    h5py = _h5py()
    plan = []
    for gpath, name, variables, obj in _groups(model, ""):
        vpath = _join(gpath, "vars")
        group = _get(path, h5file, vpath)
        if group is None:
            if not variables:
                continue
            raise FileFormatError(f"{path}: has no weights for layer '{name}' (no group {vpath}): a file saved from "
                                  "a different model?")
        if not isinstance(group, h5py.Group):
            raise FileFormatError(f"{path}: {vpath} is not a group")
        keys = list(group.keys())
        if _lookup_of(obj) is not None and "idf_weights" in keys:   # a tf_idf lookup's weights (read by _lookup_state)
            keys.remove("idf_weights")
        if len(keys) != len(variables):
            raise FileFormatError(f"{path}: layer '{name}' ({vpath}) holds {len(keys)} variables in the file and "
                                  f"{len(variables)} in the model")
        for i, var in enumerate(variables):
            plan.append((var, _dataset(path, group, str(i), var.shape, f"variable {i} of layer '{name}'")))
    return [(var, np.asarray(ds[()]).astype(var.dtype, copy=False)) for var, ds in plan]


def _read_optimizer_values(path, h5file, model):
    """[(optimizer variable, array)] from `optimizer/vars`, or None when the file has none.

    Keras saves an optimizer that has not taken a step yet as its iteration counter and learning
    rate alone: such an optimizer stays unbuilt here too (it builds on the first step, as cynet's
    own loader does); otherwise it is built on the model's trainable weights (Keras's order) and
    every slot must be in the file."""
    h5py = _h5py()
    group = _get(path, h5file, "optimizer/vars")
    opt = getattr(model, "optimizer", None)
    if not isinstance(group, h5py.Group) or opt is None or not len(group.keys()):
        return None
    lr = getattr(opt, "_learning_rate", None)
    has_lr = not callable(lr)
    n_file = len(group.keys())
    unbuilt = 1 + (1 if has_lr else 0)
    if n_file != unbuilt and not opt.built:
        with _saving._reading(path, "the optimizer cannot be built on the model's weights"):
            opt.build(model.trainable_weights)
    variables = list(opt.variables)[:1] if n_file == unbuilt and not opt.built else list(opt.variables)
    n = len(variables) + (1 if has_lr else 0)
    if n_file != n:
        raise FileFormatError(f"{path}: the optimizer state holds {n_file} variables, the model's "
                              f"{type(opt).__name__} has {n} (or {unbuilt} before its first step)")
    slots = [(variables[0], 0)] + [(v, i + (2 if has_lr else 1)) for i, v in enumerate(variables[1:])]
    plan = [(v, _dataset(path, group, str(i), v.shape, f"optimizer variable {i}")) for v, i in slots]
    values = [(v, np.asarray(ds[()]).astype(v.dtype, copy=False)) for v, ds in plan]
    if has_lr:
        ds = _dataset(path, group, "1", (), "the optimizer's learning rate")
        values.append(("learning_rate", float(ds[()])))
    return values


def _assign(model, values, opt_values):
    for var, value in values:
        var.assign(value)
    for var, value in opt_values or ():
        if var == "learning_rate":
            model.optimizer.learning_rate = value
        else:
            var.assign(value)


@contextlib.contextmanager
def _open_h5(path, data=None):
    """An h5py File (read-only) on `path` or on bytes; damage becomes a FileFormatError."""
    h5py = _h5py()
    try:
        f = h5py.File(io.BytesIO(data) if data is not None else path, "r")
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({type(exc).__name__}: {_saving._short(exc)})") \
            from None
    try:
        with _saving._reading(path, "the HDF5 weights are damaged"):
            yield f
    finally:
        f.close()


def save_weights_h5(model: Any, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
    """model.save_weights("x.weights.h5"): the weights in Keras 3's layout (Keras loads them)."""
    if not model.built:
        raise ValueError("build the model (call it on data or give it an input shape) before save_weights")
    data = _h5_bytes(model, with_optimizer=False)
    _saving._atomic_write(filepath, overwrite, lambda raw: raw.write(data))


def load_weights_h5(model: Any, filepath: str | os.PathLike[str]) -> None:
    """model.load_weights("x.weights.h5"): weights in Keras 3's layout (saved by Keras or cynet)."""
    path = os.fspath(filepath)
    _saving._check_regular(path)
    if not model.built:
        raise ValueError("build the model (call it on data or give it an input shape) before load_weights")
    with _open_h5(path) as f:
        values = _read_layer_values(path, f, model)
        lookups = _lookup_state(path, f, model)
    _assign(model, values, None)
    _set_lookups(path, lookups)


# =================================================================== configs: cynet <-> Keras
_MODULES = {"initializer": "keras.initializers", "regularizer": "keras.regularizers",
            "constraint": "keras.constraints"}


def _policy(dtype):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def _nested_to_keras(key, value):
    if key == "cells" and isinstance(value, list):   # StackedRNNCells's cells
        return [_layer_to_keras(v) if isinstance(v, dict) and "class_name" in v else v for v in value]
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        kind = next((k for k in _MODULES if key.endswith(k)), None)
        module = _MODULES.get(kind, "keras.layers")
        if key in ("layer", "forward_layer", "backward_layer", "cell"):
            return _layer_to_keras(value)
        return {"module": module, "class_name": value["class_name"], "config": value["config"],
                "registered_name": None}
    return value


_MODEL_CLASSES = ("Sequential", "Functional", "Model")
# Keras layers whose __init__ refuses `trainable` (their get_config leaves it out).
_KERAS_WITHOUT_TRAINABLE = ("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")


def _layer_to_keras(entry, layer=None):
    """A cynet layer entry {"class_name", "config", ...} in Keras 3's config.json form (a nested
    Sequential or Functional model in its model form)."""
    cls, config = entry["class_name"], dict(entry["config"])
    if cls in _MODEL_CLASSES and layer is not None:
        out = model_to_keras_config(layer)
        for key in ("name", "inbound_nodes"):
            if key in entry:
                out[key] = entry[key]
        if "inbound_nodes" in out:
            out["inbound_nodes"] = [{"args": [node["args"]], "kwargs": node.get("kwargs", {})}
                                    for node in out["inbound_nodes"]]
        return out
    if cls == "InputLayer":
        shape = config.pop("shape", None)
        config = {"batch_shape": [config.pop("batch_size", None)] + list(shape or []),
                  "dtype": config.get("dtype", "float32"), "sparse": False, "ragged": False,
                  "name": config.get("name")}
    else:
        if cls in _KERAS_WITHOUT_TRAINABLE:
            config.pop("trainable", None)
        if isinstance(config.get("dtype"), str):
            config["dtype"] = _policy(config["dtype"])
        config = {k: _nested_to_keras(k, v) for k, v in config.items()}
    out = {"module": "keras.layers", "class_name": cls, "config": config, "registered_name": None}
    if layer is not None and getattr(layer, "input_shape", None) is not None and cls != "InputLayer":
        out["build_config"] = _build_config(cls, layer)
    for key in ("name", "inbound_nodes"):
        if key in entry:
            out[key] = entry[key]
    if "inbound_nodes" in out:
        out["inbound_nodes"] = [_node_to_keras(cls, node) for node in out["inbound_nodes"]]
    return out


# Layers Keras calls with several positional tensors (cynet records them packed in one dict, by name).
_KERAS_POSITIONAL = {"MultiHeadAttention": ("query", "value")}


def _node_to_keras(cls, node):
    """A cynet inbound node as Keras records it: its inputs as the one positional argument, or, for a
    layer Keras calls with several (MultiHeadAttention(query, value, key=...)), as those positional
    arguments and the rest of the packed inputs as keyword arguments."""
    args, kwargs = node["args"], dict(node.get("kwargs", {}))
    names = _KERAS_POSITIONAL.get(cls)
    if names and isinstance(args, dict) and "class_name" not in args:
        kwargs.update((k, v) for k, v in args.items() if k not in names)
        return {"args": [args[n] for n in names], "kwargs": kwargs}
    return {"args": [args], "kwargs": kwargs}


def _node_from_keras(cls, node, path, name):
    """A Keras inbound node in cynet's form (inputs as one structure; see _node_to_keras)."""
    from .layers.attention import _INPUT_ARGS
    args = node.get("args", [])
    # Keras records mask=None for a nested model's call: the default, dropped.
    kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if not (k == "mask" and v is None)}
    names = _KERAS_POSITIONAL.get(cls)
    if names and 1 <= len(args) <= len(names) + 1:
        packed = dict(zip(_INPUT_ARGS, args))
        packed.update((k, kwargs.pop(k)) for k in _INPUT_ARGS if kwargs.get(k) is not None)
        kwargs = {k: v for k, v in kwargs.items() if k not in _INPUT_ARGS}
        return {"args": packed, "kwargs": kwargs}
    if len(args) != 1:
        raise NotImplementedError(f"{path}: layer '{name}' is called with {len(args)} positional arguments; "
                                  "cynet's functional configs take one (the inputs)")
    return {"args": args[0], "kwargs": kwargs}


def _build_config(cls, layer):
    """Keras's build_config: the input shape, or for a layer whose build takes several shapes
    (MultiHeadAttention.build(query_shape, value_shape, key_shape)) a shapes_dict by argument name."""
    if cls == "MultiHeadAttention":
        shapes = {"query_shape": layer._query_dense.input_shape, "value_shape": layer._value_dense.input_shape}
        if tuple(layer._key_dense.input_shape) != tuple(shapes["value_shape"]):
            shapes["key_shape"] = layer._key_dense.input_shape
        return {"shapes_dict": {k: _shape_list(v) for k, v in shapes.items()}}
    return {"input_shape": _shape_list(layer.input_shape)}


def _shape_list(shape):
    """A shape (or, for a layer with several inputs, a list of shapes) as JSON lists."""
    if isinstance(shape, (list, tuple)) and any(isinstance(s, (list, tuple)) for s in shape):
        return [_shape_list(s) for s in shape]
    return [None if s is None else int(s) for s in shape]


def model_to_keras_config(model: Any) -> dict[str, Any]:
    """The model's config.json in Keras 3's form (Sequential or Functional)."""
    from .models.functional import Functional
    from .models.sequential import Sequential
    config = model.get_config()
    if isinstance(model, Sequential):
        layers = [_layer_to_keras(e, l) for e, l in zip(config["layers"], [None] + list(model.layers))] \
            if config["layers"] and config["layers"][0]["class_name"] == "InputLayer" else \
            [_layer_to_keras(e, l) for e, l in zip(config["layers"], model.layers)]
        body = {"name": config["name"], "trainable": config.get("trainable", True), "dtype": _policy(
            model.dtype_policy.name), "layers": layers}
        out = {"module": "keras", "class_name": "Sequential", "config": body, "registered_name": None}
        if config.get("build_input_shape") is not None:
            out["build_config"] = {"input_shape": config["build_input_shape"]}
    elif isinstance(model, Functional):
        by_name = {l.name: l for l in model.layers}
        layers = [_layer_to_keras(e, by_name.get(e.get("name"))) for e in config["layers"]]
        body = dict(config, layers=layers, input_layers=_histories(config["input_layers"]),
                    output_layers=_histories(config["output_layers"]))
        body.setdefault("trainable", True)
        out = {"module": "keras.src.models.functional", "class_name": "Functional", "config": body,
               "registered_name": "Functional", "build_config": {"input_shape": None}}
    else:
        out = _subclassed_to_keras(model)
    return out


def _subclassed_to_keras(model):
    """A registered subclassed model as Keras writes one: its class name, registered name
    ("package>Name", which Keras resolves to the Keras class registered under that name) and
    get_config(), with the input shape it was built for as build_config."""
    from .utils.serialization import get_registered_name
    config = dict(model.get_config())   # NotImplementedError (naming the fix) when __init__ takes objects
    shape = config.pop("build_input_shape", None) or getattr(model, "_build_shapes", None)
    config["dtype"] = _policy(model.dtype_policy.name)
    registered = get_registered_name(type(model))
    if ">" not in registered:
        raise NotImplementedError(f"saving the subclassed model {type(model).__name__} as .keras needs its class "
                                  "registered (@cynet.saving.register_keras_serializable(package=...)), so that the "
                                  "file names it as Keras's loader finds it")
    return {"module": None, "class_name": type(model).__name__, "config": config, "registered_name": registered,
            "build_config": {"input_shape": shape}}


def _histories(structure):
    """cynet's model inputs/outputs (tensor dicts) as Keras's [layer name, node, tensor] triples."""
    if isinstance(structure, dict) and structure.get("class_name") == "__keras_tensor__":
        return list(structure["config"]["keras_history"])
    if isinstance(structure, dict):
        return {k: _histories(v) for k, v in structure.items()}
    return [_histories(v) for v in structure]


def _tensors(structure):
    """Keras's [layer name, node, tensor] triples as cynet's tensor dicts (same nesting)."""
    if isinstance(structure, list) and len(structure) == 3 and isinstance(structure[0], str):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": list(structure)}}
    if isinstance(structure, dict):
        return {k: _tensors(v) for k, v in structure.items()}
    return [_tensors(v) for v in structure]


def _strip_keras(value, key=""):
    """A Keras config value in cynet's form: dtype policies as names, module / registered_name dropped."""
    if isinstance(value, dict):
        if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and "config" in value:
            return value["config"].get("name", "float32")
        if value.get("class_name") == "__keras_tensor__":
            return {"class_name": "__keras_tensor__", "config": {"keras_history": value["config"]["keras_history"]}}
        return {k: _strip_keras(v, k) for k, v in value.items()
                if k not in ("module", "registered_name", "shared_object_id")}
    if isinstance(value, list):
        return [_strip_keras(v, key) for v in value]
    return value


def _accepted(cls):
    """The keyword arguments cls(...) takes: its __init__'s, and those its **kwargs pass up the MRO."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names.update(n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    return names


_KERAS_DEFAULTS: tuple[object, ...] = (None, False, 0, 0.0, "", [], {})
# Keras arguments cynet's layers do not have, at the Keras default that makes them do nothing
# (a file with another value names the argument in its error).
_KERAS_INERT = {"renorm_momentum": 0.99, "use_bias": True, "unit_forget_bias": True, "lora_alpha": None, "unroll": False, "time_major": False,
                "reset_after": True, "implementation": 2, "use_cudnn": "auto", "input_length": None,
                "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                # StringLookup's config carries IndexLookup's oov_method; its default is how cynet hashes
                # out-of-vocabulary strings
                "oov_method": "floormod"}


# Keras arguments cynet takes no value of: how a recurrent layer fills the outputs of masked steps
# (Bidirectional sets it on its layers; cynet's recurrent layers carry the last output over, as
# Keras's default zero_output_for_mask=False does).
# A lookup's vocabulary_size is Keras's record of the size its vocabulary had (it follows from the
# vocabulary; an adapted one is in the archive's assets).
_KERAS_IGNORED = ("zero_output_for_mask", "vocabulary_size")


def _inert(key, value):
    return (value in _KERAS_DEFAULTS or key in _KERAS_IGNORED
            or (key in _KERAS_INERT and value == _KERAS_INERT[key]))


def _layer_from_keras(entry, path):
    """A Keras layer entry in cynet's form, refusing (naming them) arguments cynet does not have."""
    from . import layers as cynet_layers
    from .utils.serialization import get_registered_object
    entry = _strip_keras(entry)
    cls_name = entry.get("class_name")
    config = dict(entry.get("config") or {})
    if cls_name == "Lambda" and _lambda_bytecode(config):
        raise FileFormatError(f"{path}: layer '{config.get('name')}' is a Lambda layer, whose function is Python "
                              "bytecode: cynet never loads code from a file (even with safe_mode=False); rebuild "
                              "the model in code and load its weights, or give the Lambda a named function "
                              "registered with register_keras_serializable")
    if cls_name in _MODEL_CLASSES:
        out = {"class_name": "Functional" if cls_name == "Model" else cls_name,
               "config": _model_config_from_keras(cls_name, config, entry.get("build_config"), path)}
        return _with_nodes(out, entry, path)
    if cls_name == "InputLayer":
        batch_shape = config.pop("batch_shape", None) or config.pop("batch_input_shape", None)
        if batch_shape is not None:
            config["shape"], config["batch_size"] = list(batch_shape[1:]), batch_shape[0]
        for k in ("sparse", "ragged", "optional", "input_tensor"):
            if config.pop(k, None):
                raise NotImplementedError(f"{path}: InputLayer '{config.get('name')}' has {k}=True, which cynet "
                                          "does not support")
    else:
        cls = getattr(cynet_layers, cls_name, None) or get_registered_object(cls_name)
        if cls is None:
            raise FileFormatError(f"{path}: the file uses the layer class {cls_name!r}, which cynet does not have "
                                  "(a newer Keras, or a custom layer: register it or pass custom_objects)")
        accepted = _accepted(cls)
        for k in [k for k in config if k not in accepted]:
            if _inert(k, config[k]):
                del config[k]
            else:
                raise NotImplementedError(f"{path}: layer '{config.get('name')}' ({cls_name}) has {k}={config[k]!r}, "
                                          f"an argument cynet's {cls_name} does not support")
        for k in ("layer", "forward_layer", "backward_layer", "cell"):
            if isinstance(config.get(k), dict):
                config[k] = _layer_from_keras(config[k], path)
        if isinstance(config.get("cells"), list):   # StackedRNNCells's cells
            config["cells"] = [_layer_from_keras(c, path) if isinstance(c, dict) else c for c in config["cells"]]
        for k, v in config.items():
            kind = next((m for m in _MODULES if k.endswith(m)), None)
            if kind and isinstance(v, dict) and "class_name" in v:
                config[k] = _nested_from_keras(kind, v, path, config.get("name"))
    return _with_nodes({"class_name": cls_name, "config": config}, entry, path)


def _lambda_bytecode(config):
    """Whether a Lambda layer's config holds Python bytecode (Keras's "__lambda__" form of a lambda or
    local function) rather than the name of a registered function."""
    return any(isinstance(config.get(k), dict) and config[k].get("class_name") == "__lambda__"
               for k in ("function", "output_shape", "mask"))


def _lambda_layers(config):
    """The configs of the Lambda layers anywhere in a Keras config.json structure."""
    if isinstance(config, dict):
        if config.get("class_name") == "Lambda" and isinstance(config.get("config"), dict):
            yield config["config"]
        for value in config.values():
            yield from _lambda_layers(value)
    elif isinstance(config, list):
        for value in config:
            yield from _lambda_layers(value)


def _with_nodes(out, entry, path):
    """`out` with the entry's name and inbound nodes (a functional model's layer) in cynet's form."""
    if "name" in entry:
        out["name"] = entry["name"]
    if "inbound_nodes" in entry:
        out["inbound_nodes"] = [_node_from_keras(entry.get("class_name"), node, path, entry.get("name"))
                                for node in entry["inbound_nodes"]]
    return out


def _nested_from_keras(kind, value, path, layer_name):
    """An initializer / regularizer / constraint config with Keras-only arguments at inert values dropped."""
    import importlib
    module = importlib.import_module(f"cynet.{kind}s")
    cls = getattr(module, value["class_name"], None)
    config = dict(value.get("config") or {})
    if cls is not None and isinstance(cls, type):
        accepted = set(inspect.signature(cls.__init__).parameters)
        if not any(p in ("kwargs",) for p in accepted):
            for k in [k for k in config if k not in accepted]:
                if _inert(k, config[k]):
                    del config[k]
                else:
                    raise NotImplementedError(f"{path}: layer '{layer_name}' has a {value['class_name']} {kind} with "
                                              f"{k}={config[k]!r}, which cynet's {value['class_name']} does not support")
    return {"class_name": value["class_name"], "config": config}


def _model_config_from_keras(cls, body, build_config, path):
    """A Keras Sequential / Functional config body (already stripped or not) in cynet's form."""
    body = dict(body or {})
    body.pop("dtype", None)
    layers = [_layer_from_keras(e, path) for e in body.get("layers", [])]
    if cls == "Sequential":
        return {"name": body.get("name"), "layers": layers, "trainable": body.get("trainable", True),
                "build_input_shape": (build_config or {}).get("input_shape")}
    body = _strip_keras(body)
    body["layers"] = layers
    for key in ("input_layers", "output_layers"):
        if key not in body:
            raise FileFormatError(f"{path}: the Functional model '{body.get('name')}' has no {key}")
        body[key] = _tensors(body[key])
    return body


def model_from_keras_config(config: dict[str, Any], path: str = "config.json") -> Any:
    """A cynet model from a Keras 3 config.json (Sequential or Functional, nested models included)."""
    from .models.functional import Functional
    from .models.sequential import Sequential
    cls = config.get("class_name")
    if cls not in _MODEL_CLASSES:
        return _subclassed_from_keras(config, path)
    body = _model_config_from_keras(cls, config.get("config"), config.get("build_config"), path)
    return Sequential.from_config(body) if cls == "Sequential" else Functional.from_config(body)


def _subclassed_from_keras(config, path):
    """A registered subclassed model (by its registered name, or its class name, in cynet's registry,
    custom_objects or a custom_object_scope; nothing imported), built on build_config's input shape."""
    body = _strip_keras(dict(config.get("config") or {}))
    if not isinstance(body, dict):
        raise FileFormatError(f"{path}: the model's config must be a JSON object")
    model_class = _saving._model_class(path, config)
    shape = (config.get("build_config") or {}).get("input_shape")
    if shape is not None:
        body["build_input_shape"] = shape
    return _saving._model_from_config(path, model_class, body)


# ===================================================================================== .keras
def save_keras(model: Any, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
    """model.save("x.keras"): Keras 3's archive (config, metadata, weights and optimizer state)."""
    if not model.built:
        raise ValueError("the model must be built (called on data, or given an input shape) before it is saved")
    config = model_to_keras_config(model)
    for lam in _lambda_layers(config):
        if _lambda_bytecode(lam):
            raise NotImplementedError(
                f"the Lambda layer '{lam.get('name')}' wraps a lambda or local function: a .keras file would need its "
                "bytecode, which cynet never writes (nor loads). Give it a named function registered with "
                "@cynet.saving.register_keras_serializable (Keras loads that by name), or save as .cynet")
    if getattr(model, "compiled", False):
        config["compile_config"] = _compile_to_keras(model)
    metadata = {"keras_version": KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    weights = _h5_bytes(model, with_optimizer=True)

    def members():
        yield "metadata.json", json.dumps(metadata).encode()
        yield "config.json", json.dumps(config).encode()
        yield "model.weights.h5", weights
    _saving._atomic_zip(os.fspath(filepath), overwrite, members())


def _compile_to_keras(model):
    from . import optimizers
    compile_config = dict(getattr(model, "_compile_config", None) or {})
    opt = optimizers.serialize(model.optimizer)
    out = {"optimizer": {"module": "keras.optimizers", "class_name": opt["class_name"], "config": opt["config"],
                         "registered_name": None},
           "loss": _with_module(compile_config.get("loss"), "keras.losses"),
           "loss_weights": compile_config.get("loss_weights"),
           "metrics": _with_module(compile_config.get("metrics"), "keras.metrics"),
           "weighted_metrics": _with_module(compile_config.get("weighted_metrics"), "keras.metrics"),
           "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}
    return out


def _with_module(value, module):
    """Serialized objects ({"class_name", "config"}) inside `value` tagged with Keras's module."""
    if isinstance(value, dict):
        if "class_name" in value and "config" in value:
            return {"module": module, "class_name": value["class_name"], "config": value["config"],
                    "registered_name": None}
        return {k: _with_module(v, module) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_module(v, module) for v in value]
    return value


def load_keras(filepath: str | os.PathLike[str], compile: bool = True, safe_mode: bool = True) -> Any:
    """A model from a Keras 3 `.keras` archive (saved by Keras or by cynet)."""
    from . import optimizers
    with _saving._Archive(filepath) as archive:
        path = archive.path
        for member in ("config.json", "model.weights.h5"):
            if member not in archive.infos:
                raise FileFormatError(f"{path}: a .keras archive must hold {member}")
        config = archive.read_json("config.json")
        if not isinstance(config, dict):
            raise FileFormatError(f"{path}: config.json must hold a JSON object")
        if safe_mode and any(_lambda_bytecode(c) for c in _lambda_layers(config)):
            raise ValueError(f"{path}: the model holds a Lambda layer, whose function would be deserialized from "
                             "bytecode: refused in safe_mode (as Keras does). Pass safe_mode=False only for a file "
                             "you trust — cynet still cannot load Lambda bytecode")
        data = archive.read_member("model.weights.h5", archive.size)
        with _open_h5(path, data) as f:
            _vocabularies_into_config(path, config, f, archive)
        with _saving._reading(path, "the architecture in config.json is invalid"):
            model = model_from_keras_config(config, path)
        if not model.built:
            raise FileFormatError(f"{path}: the saved model has no input shape")
        compile_config = config.get("compile_config")
        if compile and isinstance(compile_config, dict) and compile_config:   # {}: saved uncompiled
            with _saving._reading(path, "the compile settings in config.json are invalid"):
                opt = _strip_keras(compile_config.get("optimizer"))
                model.compile(optimizer=optimizers.deserialize(_optimizer_from_keras(opt, path)),
                              loss=_strip_keras(compile_config.get("loss")),
                              loss_weights=compile_config.get("loss_weights"),
                              metrics=_strip_keras(compile_config.get("metrics")) or None,
                              weighted_metrics=_strip_keras(compile_config.get("weighted_metrics")) or None)
        with _open_h5(path, data) as f:
            values = _read_layer_values(path, f, model)
            lookups = _lookup_state(path, f, model, archive)
            opt_values = _read_optimizer_values(path, f, model) if compile and getattr(model, "compiled", False) \
                else None
    _assign(model, values, opt_values)
    _set_lookups(path, lookups)
    return model


def _optimizer_from_keras(opt, path):
    """A Keras optimizer config in cynet's form: Keras-only settings at their defaults are dropped."""
    from . import optimizers
    if isinstance(opt, str) or opt is None:
        return opt
    cls = getattr(optimizers, opt.get("class_name", ""), None)
    if cls is None:
        raise FileFormatError(f"{path}: unknown optimizer {opt.get('class_name')!r}")
    config = dict(opt.get("config") or {})
    accepted = set(inspect.signature(cls.__init__).parameters)
    for k in [k for k in config if k not in accepted]:
        if _inert(k, config[k]):
            del config[k]
        else:
            raise NotImplementedError(f"{path}: the optimizer has {k}={config[k]!r}, which cynet's "
                                      f"{opt['class_name']} does not support")
    return {"class_name": opt["class_name"], "config": config}
