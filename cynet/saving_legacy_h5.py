"""Legacy HDF5 files (TensorFlow's Keras 2: `model.save("m.h5")` and `save_weights("w.h5")`), read only.

The layout (keras/src/legacy/saving/legacy_h5_format.py describes it; tests/fixtures/make_legacy_h5.py
writes such files with h5py): a full-model file carries the architecture as JSON in the root
attribute `model_config` (TF-Keras 2's config form: `batch_input_shape` on a Sequential's first
layer, inbound nodes as lists of [layer, node, tensor, kwargs]) and the compile settings in
`training_config`; its weights sit in the group `model_weights` (a weights-only file has them at its
root). That group's attribute `layer_names` lists the layers (long lists split into
`layer_names0`, `layer_names1`, ...); each layer's group `<layer>` lists its variables in the
attribute `weight_names` (trainable first, then non-trainable) and holds each as the dataset at that
name (e.g. `dense/kernel:0`).

Weights are matched to the model's layers by name when every layer with weights has its name in the
file (a file saved from this architecture), else by order, as Keras's `load_weights` does. The
optimizer's state (TF's own variable layout) is not restored: a loaded model is compiled with the
file's settings and starts a fresh optimizer, as Keras 3 does for these files. cynet never writes
this format. What parses untrusted bytes: h5py / the HDF5 library (superblock, object headers,
attributes, the headers of the datasets read) and Python's json (size and depth capped); every
dataset's dtype and shape are checked before its data is read.
"""
import json
import os
import warnings
from typing import Any

import numpy as np

from . import saving as _saving
from .saving import FileFormatError
from .saving_keras import _dataset, _get, _h5py, _open_h5, model_from_keras_config, _optimizer_from_keras, _strip_keras

_MAX_NAMES = 1 << 16   # entries in a layer_names / weight_names attribute


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _names(path, group, name):
    """The list attribute `name` of `group` (joined from `name0`, `name1`, ... when split), decoded."""
    chunks = []
    if name in group.attrs:
        chunks.append(group.attrs[name])
    else:
        while f"{name}{len(chunks)}" in group.attrs and len(chunks) < _MAX_NAMES:
            chunks.append(group.attrs[f"{name}{len(chunks)}"])
    out = []
    for chunk in chunks:
        values = np.atleast_1d(np.asarray(chunk))
        if values.dtype.kind not in "SUO" or values.ndim != 1:
            raise FileFormatError(f"{path}: the attribute {group.name}.{name} is not a list of names")
        out.extend(str(_text(v)) for v in values)
        if len(out) > _MAX_NAMES:
            raise FileFormatError(f"{path}: the attribute {group.name}.{name} lists more than {_MAX_NAMES} names")
    return out


def _legacy_weights(layer):
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _weights_group(path, h5file):
    if "layer_names" not in h5file.attrs and "layer_names0" not in h5file.attrs and "model_weights" in h5file:
        group = _get(path, h5file, "model_weights")
        if not isinstance(group, _h5py().Group):
            raise FileFormatError(f"{path}: model_weights is not a group")
        return group
    return h5file


def _read_values(path, group, model):
    """[(variable, array)] for every model layer with weights, all checked before any data is read."""
    h5py = _h5py()
    layers = [layer for layer in model.layers if _legacy_weights(layer)]
    saved = []
    for name in _names(path, group, "layer_names"):
        sub = _get(path, group, name)
        if not isinstance(sub, h5py.Group):
            raise FileFormatError(f"{path}: layer_names lists '{name}', which has no group in the file")
        weight_names = _names(path, sub, "weight_names")
        if weight_names:
            saved.append((name, sub, weight_names))
    by_name = {name: (sub, names) for name, sub, names in saved}
    if all(layer.name in by_name for layer in layers):
        pairs = [(layer, layer.name, *by_name[layer.name]) for layer in layers]
    elif len(saved) == len(layers):
        pairs = [(layer, name, sub, names) for layer, (name, sub, names) in zip(layers, saved)]
    else:
        raise FileFormatError(f"{path}: the file holds weights for {len(saved)} layers "
                              f"({[n for n, _, _ in saved][:8]}), the model has {len(layers)} layers with weights "
                              f"({[l.name for l in layers][:8]}): a file saved from a different model?")
    plan = []
    for layer, name, sub, weight_names in pairs:
        variables = _legacy_weights(layer)
        if len(weight_names) != len(variables):
            raise FileFormatError(f"{path}: layer '{layer.name}' has {len(variables)} weights, the file's layer "
                                  f"'{name}' holds {len(weight_names)}")
        for var, wname in zip(variables, weight_names):
            plan.append((var, _dataset(path, sub, wname, var.shape, f"weight '{wname}' of layer '{layer.name}'")))
    return [(var, np.asarray(ds[()]).astype(var.dtype, copy=False)) for var, ds in plan]


def load_weights_legacy(model: Any, filepath: str | os.PathLike[str]) -> None:
    """model.load_weights("w.h5"): a TF-Keras 2 weights file (or the weights of a full-model file)."""
    path = os.fspath(filepath)
    _saving._check_regular(path)
    if not model.built:
        raise ValueError("build the model (call it on data or give it an input shape) before load_weights")
    with _open_h5(path) as f:
        values = _read_values(path, _weights_group(path, f), model)
    for var, value in values:
        var.assign(value)


def _json_attr(path, h5file, name):
    raw = h5file.attrs.get(name)
    if raw is None:
        return None
    raw = _text(raw.item() if isinstance(raw, np.ndarray) and raw.size == 1 else raw)
    if not isinstance(raw, str):
        raise FileFormatError(f"{path}: the attribute {name} is not JSON text")
    if len(raw) > _saving.MAX_CONFIG_BYTES:
        raise FileFormatError(f"{path}: the attribute {name} is implausibly large ({len(raw)} characters)")
    depth = _saving._json_depth(raw)
    if depth > _saving.MAX_CONFIG_DEPTH:
        raise FileFormatError(f"{path}: the attribute {name} nests {depth} levels deep")
    with _saving._reading(path, f"the attribute {name} is not valid JSON"):
        return json.loads(raw)


# ------------------------------------------------------------------ TF-Keras 2 configs -> Keras 3's
def _node_to_keras3(node):
    """A TF-Keras 2 inbound node ([[layer, node, tensor, kwargs], ...]) as Keras 3's {"args", "kwargs"}."""
    if isinstance(node, dict):
        return node
    tensors = [{"class_name": "__keras_tensor__", "config": {"keras_history": list(t[:3])}} for t in node]
    kwargs = node[0][3] if node and len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
    return {"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": kwargs}


def _layer_to_keras3(entry):
    entry = dict(entry)
    config = dict(entry.get("config") or {})
    cls = entry.get("class_name")
    if cls in ("Sequential", "Functional", "Model"):
        return _model_to_keras3(entry)
    if cls != "InputLayer":
        config.pop("batch_input_shape", None)
    if cls == "BatchNormalization" and isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
        config["axis"] = config["axis"][0]
    if "inbound_nodes" in entry:
        entry["inbound_nodes"] = [_node_to_keras3(n) for n in entry["inbound_nodes"]]
    entry["config"] = config
    return entry


def _model_to_keras3(config):
    """A TF-Keras 2 model config in Keras 3's form (what saving_keras translates to cynet's)."""
    config = dict(config)
    body = dict(config.get("config") or {})
    layers = list(body.get("layers") or [])
    if config.get("class_name") == "Sequential" and layers and layers[0].get("class_name") != "InputLayer":
        shape = (layers[0].get("config") or {}).get("batch_input_shape")
        if shape is not None:
            layers.insert(0, {"class_name": "InputLayer", "config": {
                "batch_input_shape": shape, "dtype": layers[0]["config"].get("dtype", "float32"),
                "name": f"{layers[0]['config'].get('name', 'input')}_input"}})
    body["layers"] = [_layer_to_keras3(e) for e in layers]
    for key in ("input_layers", "output_layers"):   # TF-Keras 2 always lists them: one is the tensor itself
        value = body.get(key)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
            body[key] = value[0]
    config["config"] = body
    return config


def load_model_legacy(filepath: str | os.PathLike[str], compile: bool = True, safe_mode: bool = True) -> Any:
    """A model from a TF-Keras 2 full-model `.h5` file (architecture, weights, compile settings)."""
    from . import optimizers
    path = os.fspath(filepath)
    _saving._check_regular(path)
    with _open_h5(path) as f:
        config = _json_attr(path, f, "model_config")
        if not isinstance(config, dict):
            raise FileFormatError(f"{path}: has no model_config attribute (a weights-only file? load it with "
                                  "model.load_weights)")
        if safe_mode and '"Lambda"' in json.dumps(config):
            raise ValueError(f"{path}: the model holds a Lambda layer, whose function would be deserialized from "
                             "bytecode: refused in safe_mode (as Keras does)")
        with _saving._reading(path, "the architecture in model_config is invalid"):
            model = model_from_keras_config(_model_to_keras3(config), path)
        if not model.built:
            raise FileFormatError(f"{path}: the saved model has no input shape")
        values = _read_values(path, _weights_group(path, f), model)
        training = _json_attr(path, f, "training_config") if compile else None
    for var, value in values:
        var.assign(value)
    if isinstance(training, dict) and training.get("optimizer_config"):
        with _saving._reading(path, "the compile settings in training_config are invalid"):
            opt = _strip_keras(training["optimizer_config"])
            if isinstance(opt, dict) and isinstance(opt.get("class_name"), str):
                opt = dict(opt, class_name=opt["class_name"].split(">")[-1])   # TF 2.11+: "Custom>Adam"
                opt["config"] = {k: v for k, v in (opt.get("config") or {}).items()
                                 if k not in ("jit_compile", "is_legacy_optimizer", "decay") or not v}
            model.compile(optimizer=optimizers.deserialize(_optimizer_from_keras(opt, path)),
                          loss=_strip_keras(training.get("loss")), loss_weights=training.get("loss_weights"),
                          metrics=_metrics(path, training.get("metrics")))
    return model


def _metrics(path, metrics):
    """TF-Keras 2's saved metrics (names, or MeanMetricWrapper configs naming their function) as names."""
    out = []

    def visit(m):
        if isinstance(m, str):
            out.append(m)
        elif isinstance(m, list):
            for v in m:
                visit(v)
        elif isinstance(m, dict):
            cfg = m.get("config") or {}
            name = cfg.get("name") if m.get("class_name") == "MeanMetricWrapper" else None
            if isinstance(name, str):
                out.append(name)
            else:
                warnings.warn(f"{path}: the saved metric {m.get('class_name')!r} is not restored", stacklevel=4)
    visit(metrics)
    return out or None
