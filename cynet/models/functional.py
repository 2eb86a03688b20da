"""Functional models: `Model(inputs, outputs)`, a graph of layer calls on symbolic tensors
(Keras 3: keras/src/models/functional.py).

Building walks from the outputs back to the inputs through each tensor's node, giving the nodes
in topological order; calling runs them in that order on arrays, each layer call recording itself
on the active tape as any call does, so training, shared layers and nested models need nothing
more.

Masks (Keras 3) are kept per graph tensor during a call (a dict beside the values, so concurrent
calls share nothing): a node's layer gets the mask of its first argument (a list of masks for a
list of inputs) as `mask=` unless the call gives one or passes other tensors (Keras's rule), and
its output tensors get compute_mask's. `model(x, mask=...)` sets the inputs' masks (one per
input, a list or a dict by name); a nested model takes its inputs' masks in and gives its
outputs' masks out. Nodes cost nothing more while no mask exists.
"""
import inspect
from typing import Any

import numpy as np

from .. import tape as _tape
from .._validation import as_array
from ..graph import KerasTensor, flatten, map_structure
from ..layers import InputLayer
from ..layers import deserialize as deserialize_layer
from ..layers import serialize as serialize_layer
from ..layers.base import structure_mask
from ..ops import core as _opcore
from ..trainers.trainer import _describe
from ..utils.serialization import custom_object_scope
from .model import Model, _same_samples, nested_masked_call


class Functional(Model):
    """A model defined by its input and output symbolic tensors (any number, in lists or dicts).

    Args:
        inputs: Input(s) of the model: a symbolic input (`cynet.Input`) or a list/dict of them.
        outputs: Output(s) of the model, computed from `inputs` by layer calls.
        name: Name of the object (a default is generated when `None`).
        trainable: Whether the model's weights are updated by training.
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, trainable: bool = True,
                 **kwargs: Any) -> None:
        for what, value in (("inputs", inputs), ("outputs", outputs)):
            leaves = flatten(value)
            if not leaves or not all(isinstance(t, KerasTensor) for t in leaves):
                bad = next((t for t in leaves if not isinstance(t, KerasTensor)), None)
                raise TypeError(f"{what} must be symbolic tensors (from cynet.Input and layer calls on them), or "
                                f"a list or dict of them; received {type(bad).__name__ if leaves else 'nothing'}")
        for t in flatten(inputs):
            if not isinstance(t._keras_history[0], InputLayer):
                raise ValueError(f"Model inputs must come from cynet.Input; {t!r} is the output of layer "
                                 f"'{t._keras_history[0].name}'")
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self.inputs = flatten(inputs)
        self.outputs = flatten(outputs)
        self._nodes, self._graph_layers = _topological(self.inputs, self.outputs)
        names: dict[str, Any] = {}
        for layer in self._graph_layers:
            if names.setdefault(layer.name, layer) is not layer:
                raise ValueError(f"The name '{layer.name}' is used by 2 layers of the model; all layer names must be "
                                 "unique (give them distinct name= arguments)")
        self.built = True
        self.input_shape = _unwrap([t.shape for t in self.inputs])
        self.output_shape = _unwrap([t.shape for t in self.outputs])

    # ---------------------------------------------------------------- structure
    @property
    def layers(self) -> Any:
        """Every layer of the graph, in topological order (the InputLayers first), once each."""
        return list(self._graph_layers)

    @property
    def input_names(self) -> Any:
        """The names of the model's input layers, in input order."""
        return [t._keras_history[0].name for t in self.inputs]

    @property
    def output_names(self) -> Any:
        """The names of the layers that produce the model's outputs, in output order."""
        return self._output_names()

    def _output_names(self, x=None):
        return [t._keras_history[0].name for t in self.outputs]

    def _output_shapes(self, x):
        return [t.shape for t in self.outputs]

    def compute_output_shape(self, input_shape: Any) -> Any:
        given = flatten(input_shape) if not _is_shape(input_shape) else [input_shape]
        for t, shape in zip(self.inputs, given):
            if len(shape) != len(t.shape) or any(a is not None and b is not None and a != b
                                                 for a, b in zip(shape[1:], t.shape[1:])):
                raise ValueError(f"model '{self.name}': input '{t.name}' takes samples of shape {t.shape[1:]}; "
                                 f"received shape {tuple(shape)}")
        shapes = [t.shape for t in self.outputs]
        return shapes if len(shapes) > 1 else shapes[0]

    def build(self, input_shape: Any = None) -> Any:
        self.built = True

    # ---------------------------------------------------------------- calling
    def _flat_inputs(self, inputs, name):
        """The arrays of `inputs` in the order of model.inputs: one array for a single input, a list
        or tuple in order, or a dict keyed by input name."""
        n = len(self.inputs)
        if isinstance(inputs, dict):
            names = self.input_names
            missing = [k for k in names if k not in inputs]
            if missing:
                raise ValueError(f"{name} is missing the model's inputs {missing}; it has {sorted(inputs)} "
                                 f"(inputs: {names})")
            unknown = [k for k in inputs if k not in names]
            if unknown:
                raise ValueError(f"{name} has {unknown}, which are not inputs of the model; its inputs are {names}")
            return [inputs[k] for k in names], [f"{name}[{k!r}]" for k in names]
        if n == 1:
            if isinstance(inputs, (list, tuple)) and len(inputs) == 1 and not np.isscalar(inputs[0]) and \
                    isinstance(inputs[0], np.ndarray):
                inputs = inputs[0]
            return [inputs], [name]
        if not isinstance(inputs, (list, tuple)) or len(inputs) != n:
            raise ValueError(f"{name} must be a list of {n} arrays (one per model input: {self.input_names}) or a dict "
                             f"keyed by input name; received {_describe(inputs)}")
        return list(inputs), [f"{name}[{i}]" for i in range(n)]

    def _takes_strings(self):
        return any(t.dtype == "string" for t in self.inputs)

    def _convert(self, t, value, label):
        """One input array: the input's dtype (strings as they are, for an Input(dtype="string")),
        checked against its shape."""
        x = value if isinstance(value, np.ndarray) else as_array(label, value)
        if t.dtype == "string":
            if x.dtype.kind not in "USO":
                raise TypeError(f"{label} must hold strings (input '{t.name}' has dtype 'string'); received dtype "
                                f"{x.dtype}")
        elif x.dtype.kind not in "biuf":
            raise TypeError(f"{label} must be numeric; received dtype {x.dtype}")
        elif x.dtype != np.dtype(t.dtype):
            x = x.astype(t.dtype)
        if x.ndim != len(t.shape) or any(e is not None and e != a for e, a in zip(t.shape[1:], x.shape[1:])):
            raise ValueError(f"{label} must have samples of shape {t.shape[1:]} (input '{t.name}' of model "
                             f"'{self.name}'); received shape {x.shape}")
        return x

    def _prepare_call_inputs(self, inputs, tape=None):
        values, labels = self._flat_inputs(inputs, "inputs")
        return [_tape.record_cast(tape, v, self._convert(t, _opcore.plain(v), label))
                for t, v, label in zip(self.inputs, values, labels)]

    def _invoke(self, tape, inputs, training, kwargs):
        mask, sink = kwargs.pop("mask", None), kwargs.pop("_mask_sink", None)
        if kwargs:
            raise TypeError(f"model '{self.name}': unexpected call arguments {sorted(kwargs)}")
        x = self._prepare_call_inputs(inputs, tape)
        outputs, masks = self._run(x, training, mask)
        if sink is not None:
            sink.append(masks)
        return tuple(x), outputs

    def call(self, inputs: Any, training: bool | None = False, mask: Any = None) -> Any:
        """Run the graph on `inputs` (arrays in the order of model.inputs, as a list); `mask`: the
        inputs' masks (one, or a list with one per input, None where an input has none).

        Args:
            inputs: Input(s) of the model: a symbolic input (`cynet.Input`) or a list/dict of them.
            training: Whether to run in training mode (dropout, batch statistics).
            mask: Optional mask of the inputs.
        """
        return self._run(inputs, training, mask)[0]

    def _run(self, inputs, training, mask=None):
        """(the outputs, their masks in the outputs' structure). Masks travel beside the arrays,
        one per node tensor (Keras 3 attaches them to the tensors): each node's layer gets its
        inputs' masks and its outputs get compute_mask's. With no mask given and no layer that
        can make one, it is the plain walk (masks None)."""
        flat = inputs if isinstance(inputs, list) and len(inputs) == len(self.inputs) else \
            self._prepare_call_inputs(inputs)
        values = {id(t): v for t, v in zip(self.inputs, flat)}
        if mask is None and not any(layer._mask_source for layer in self._maybe_mask_sources):
            done = set()
            for node in self._nodes:   # no mask anywhere: the plain walk
                if id(node) in done:
                    continue
                args = map_structure(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t, node.arguments)
                if self._run_pair(node, args, values, training, done):
                    continue
                kwargs = map_structure(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t, node.kwargs)
                out = node.layer(args, training=training, **kwargs)
                for t, v in zip(node.outputs, flatten(out) if isinstance(out, (list, tuple)) else [out]):
                    values[id(t)] = v
            return map_structure(lambda t: values[id(t)], self._outputs_struct), None
        masks = self._input_masks(flat, mask) if mask is not None else {}
        done = set()
        for node in self._nodes:
            if id(node) in done:
                continue
            args = map_structure(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t, node.arguments)
            if (not node.layer._mask_source and masks.get(id(node.arguments)) is None
                    and self._run_pair(node, args, values, training, done)):   # (no mask in or out)
                continue
            kwargs = map_structure(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t, node.kwargs)
            layer = node.layer
            if masks or layer._mask_source:
                previous = structure_mask(map_structure(
                    lambda t: masks.get(id(t)) if isinstance(t, KerasTensor) else None, node.arguments))
                # Keras fills `mask` only for a call whose one tensor argument is the first
                auto = not any(isinstance(t, KerasTensor) for t in flatten(node.kwargs))
                out, out_mask = layer._masked_call(args, previous, training, kwargs, auto)
                out_masks = flatten(out_mask) if isinstance(out_mask, (list, tuple)) else [out_mask]
                for t, m in zip(node.outputs, out_masks):
                    if m is not None:
                        masks[id(t)] = m
            else:
                out = layer(args, training=training, **kwargs)
            for t, v in zip(node.outputs, flatten(out) if isinstance(out, (list, tuple)) else [out]):
                values[id(t)] = v
        return (map_structure(lambda t: values[id(t)], self._outputs_struct),
                map_structure(lambda t: masks.get(id(t)), self._outputs_struct))

    def _input_masks(self, flat, mask):
        """{id(input tensor): its mask} from the `mask` of a call: one mask for a one-input model,
        else a list (or a dict by input name) with one mask or None per input."""
        if isinstance(mask, dict):
            mask = [mask.get(name) for name in self.input_names]
        elif len(self.inputs) == 1 and not isinstance(mask, (list, tuple)):
            mask = [mask]
        checked = self._checked_mask(list(mask) if isinstance(mask, (list, tuple)) else mask, list(flat))
        return {id(t): m for t, m in zip(self.inputs, checked) if m is not None}

    @property
    def _mask_source(self):
        return any(layer._mask_source for layer in self._maybe_mask_sources)

    @property
    def _maybe_mask_sources(self):
        """The layers of the graph that may make a mask from none: those whose class defines
        compute_mask, and nested models (whose own layers decide; they may still change)."""
        found = self.__dict__.get("_mask_sources_cache")
        if found is None:
            found = [node.layer for node in self._nodes if node.layer._mask_source
                     or isinstance(inspect.getattr_static(type(node.layer), "_mask_source", None), property)]
            self.__dict__["_mask_sources_cache"] = found
        return found

    def _run_pair(self, node, args, values, training, done):
        """Whether `node` and the one node that takes its output ran as one call
        (Layer._fuse_next); that node's output is then in values and its id in done."""
        nxt = self._pairs.get(id(node))
        fused = node.layer._fuse_next(nxt.layer, args) if nxt is not None else None
        if fused is None:
            return False
        values[id(nxt.outputs[0])] = fused(args, training)
        done.add(id(nxt))
        return True

    @property
    def _pairs(self):
        """{id(node): the one node that takes its output}, for the nodes of one tensor argument
        and one output that only that node takes, as its one argument (not a model output):
        where Layer._fuse_next may run both calls as one."""
        found = self.__dict__.get("_pairs_cache")
        if found is None:
            takers: dict[int, list[Any]] = {}
            for node in self._nodes:
                for t in flatten([node.arguments, node.kwargs]):
                    if isinstance(t, KerasTensor):
                        takers.setdefault(id(t), []).append(node)
            outputs = {id(t) for t in flatten(self._outputs_struct)}
            found = {}
            for node in self._nodes:
                if len(node.outputs) != 1 or not isinstance(node.arguments, KerasTensor) or node.kwargs:
                    continue
                key = id(node.outputs[0])
                nxt = takers.get(key, ())
                if (key not in outputs and len(nxt) == 1 and len(nxt[0].outputs) == 1 and not nxt[0].kwargs
                        and nxt[0].arguments is node.outputs[0]):
                    found[id(node)] = nxt[0]
            self.__dict__["_pairs_cache"] = found
        return found

    _masked_call = nested_masked_call   # the input masks go in, the mask its layers leave comes out

    # ---------------------------------------------------------------- data
    def _prepare_x(self, x, name="x"):
        """x as a list of arrays, one per model input: numeric, non-empty, of the input's shape,
        finite, one number of samples."""
        if x is None:
            raise ValueError(f"{name} must be given")
        values, labels = self._flat_inputs(x, name)
        arrays = [self._input_array(value, label, lambda a, t=t, label=label: self._convert(t, a, label),
                                    lambda a: None)
                  for t, value, label in zip(self.inputs, values, labels)]
        _same_samples(arrays, labels)
        return arrays

    # ---------------------------------------------------------------- summary / config
    def _summary_rows(self):
        rows = []
        for layer in self._graph_layers:
            inbound = [n for n in layer._inbound_nodes if n in self._node_set]
            shapes = [t.shape for n in inbound for t in n.outputs]
            connected = ", ".join(f"{t._keras_history[0].name}[{t._keras_history[1]}][{t._keras_history[2]}]"
                                  for n in inbound for t in n.input_tensors)
            shape = _unwrap(shapes) if shapes else "?"
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}",
                         connected or "-"))
        return rows

    @property
    def _node_set(self):
        return set(self._nodes) | {t.node for t in self.inputs}

    def get_config(self) -> dict[str, Any]:
        """Layers (each with its inbound nodes as [layer name, node index, tensor index] triples)
        and the model's input and output tensors, as Keras's Functional config."""
        index = {id(t.node): 0 for t in self.inputs}   # a node's position among its layer's calls here
        counts: dict[int, int] = {}
        for node in self._nodes:
            index[id(node)] = counts.get(id(node.layer), 0)
            counts[id(node.layer)] = index[id(node)] + 1
        layers = [dict(serialize_layer(layer), name=layer.name, inbound_nodes=[]) for layer in self._graph_layers]
        by_name = {entry["name"]: entry for entry in layers}
        for node in self._nodes:
            by_name[node.layer.name]["inbound_nodes"].append({
                "args": _encode(node.arguments, index), "kwargs": _encode(node.kwargs, index)})
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "input_layers": _encode(self._inputs_struct, index),
                "output_layers": _encode(self._outputs_struct, index)}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> "Functional":
        """Rebuild the graph: make each layer, then replay its calls on the rebuilt tensors
        (`custom_objects`: classes the config names beyond cynet's and the registered ones).

        Args:
            config: The dictionary `get_config()` returned.
            custom_objects: Optional dict mapping names to custom classes or functions used while
                deserializing.
        """
        with custom_object_scope(custom_objects):
            return cls._from_config(config)

    @classmethod
    def _from_config(cls, config):
        made, tensors = {}, {}
        pending = []
        for entry in config["layers"]:
            layer = deserialize_layer({"class_name": entry["class_name"], "config": entry["config"]})
            made[entry["name"]] = layer
            if isinstance(layer, InputLayer):
                tensors[(entry["name"], 0, 0)] = layer.output
            pending.append((layer, list(entry.get("inbound_nodes", []))))
        progress = True
        while progress and any(nodes for _, nodes in pending):
            progress = False
            for layer, nodes in pending:
                while nodes:
                    node = nodes[0]
                    try:
                        args = _decode(node["args"], tensors)
                        kwargs = _decode(node.get("kwargs", {}), tensors)
                    except KeyError:
                        break       # an input tensor not made yet
                    out = layer(args, **kwargs)
                    k = len(layer._inbound_nodes) - 1
                    for i, t in enumerate(flatten(out)):
                        tensors[(layer.name, k, i)] = t
                    nodes.pop(0)
                    progress = True
        if any(nodes for _, nodes in pending):
            raise ValueError("the model config's layers cannot be connected (an inbound node refers to a tensor no "
                             "layer makes)")
        try:
            inputs = _decode(config["input_layers"], tensors)
            outputs = _decode(config["output_layers"], tensors)
        except KeyError as exc:
            raise ValueError(f"the model config refers to a tensor no layer makes: {exc}") from None
        return cls(inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True))


# -------------------------------------------------------------------- graph walk
def _topological(inputs, outputs):
    """(the nodes to run, in topological order, without the inputs' own; the layers, once each,
    InputLayers first) for the graph from `inputs` to `outputs`; a clear error when an output
    needs a tensor that does not come from the inputs."""
    input_ids = {id(t) for t in inputs}
    order, done, layers_seen = [], set(), {}

    def visit(t, path):
        if id(t) in input_ids:
            return
        node = t.node
        if id(node) in done:
            return
        if node.is_input:
            raise ValueError(f"Graph disconnected: the output needs the value of {t!r} (input "
                             f"'{node.layer.name}'), which is not one of the model's inputs "
                             f"{[i.name for i in inputs]}; reached through layers {path[::-1]}")
        for parent in node.input_tensors:
            visit(parent, path + [node.layer.name])
        done.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t, [])
    for t in inputs:
        layers_seen.setdefault(id(t.node.layer), t.node.layer)
    for node in order:
        layers_seen.setdefault(id(node.layer), node.layer)
    return order, list(layers_seen.values())


def _encode(structure, index):
    """Tensors as Keras's __keras_tensor__ entries: shape, dtype and [layer name, node index, tensor
    index] (Keras rebuilds its symbolic tensors from the shape and dtype; cynet needs only the triple)."""
    def enc(t):
        if isinstance(t, KerasTensor):
            layer, node_index, tensor_index = t._keras_history
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(t.shape), "dtype": t.dtype,
                               "keras_history": [layer.name, index.get(id(layer._inbound_nodes[node_index]), 0),
                                                 tensor_index]}}
        return t
    return map_structure(enc, structure)


def _decode(structure, tensors):
    if isinstance(structure, dict) and structure.get("class_name") == "__keras_tensor__":
        name, node, i = structure["config"]["keras_history"]
        return tensors[(name, node, i)]
    if isinstance(structure, (list, tuple)):
        return type(structure)(_decode(s, tensors) for s in structure)
    if isinstance(structure, dict):
        return {k: _decode(v, tensors) for k, v in structure.items()}
    return structure


def _is_shape(value):
    return isinstance(value, tuple) and all(s is None or isinstance(s, (int, np.integer)) for s in value)


def _unwrap(items):
    return items[0] if len(items) == 1 else items
