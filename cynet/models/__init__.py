"""Models: `Model` (Functional graphs and subclassed models), `Sequential`, loading and cloning."""
from typing import Any

from .functional import Functional  # noqa: F401
from .model import Model  # noqa: F401
from .sequential import Sequential  # noqa: F401
from .templates import template  # noqa: F401


def load_model(filepath: Any, custom_objects: dict[str, Any] | None = None, compile: bool = True,
               safe_mode: bool = True) -> Any:
    """A model saved by `model.save` (see cynet.saving).

    Args:
        filepath: Path of the file.
        custom_objects: Optional dict mapping names to custom classes or functions used while deserializing.
        compile: Whether to compile the loaded model with its saved training configuration.
        safe_mode: Refuse to deserialize Lambda layers' Python bytecode (Keras's safe mode).
    """
    from ..saving import load_model as _load
    return _load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def save_model(model: Any, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
    """Save `model` to a `.keras` file (or cynet's formats), as `model.save` (Keras's
    `keras.models.save_model`).

    Args:
        model: The model to save.
        filepath: Path of the file.
        overwrite: Whether to overwrite an existing file.
        **kwargs: Keras's other options (`zipped`): only the zipped `.keras` archive is written.
    """
    if kwargs.get("zipped") is False:
        raise NotImplementedError("save_model(zipped=False) (an unzipped .keras directory) is not supported yet")
    unknown = set(kwargs) - {"zipped"}
    if unknown:
        raise TypeError(f"save_model got unexpected keyword arguments {sorted(unknown)}")
    model.save(filepath, overwrite=overwrite)


def model_from_json(json_string: str, custom_objects: dict[str, Any] | None = None) -> Any:
    """A model (new weights) from `model.to_json()`'s string, cynet's or Keras's.

    Args:
        json_string: The JSON text.
        custom_objects: Optional dict mapping names to custom classes used while deserializing.
    """
    import json
    from ..saving_objects import deserialize_keras_object
    return deserialize_keras_object(json.loads(json_string), custom_objects=custom_objects)


def clone_model(model: Any, input_tensors: Any = None, clone_function: Any = None) -> Any:
    """A new model of the same architecture with freshly initialized weights (Keras's clone_model):
    built from the model's config.

    Args:
        model: The model being trained, evaluated or run.
        input_tensors: Not supported yet (raises NotImplementedError unless `None`).
        clone_function: Not supported yet (raises NotImplementedError unless `None`).
    """
    if input_tensors is not None or clone_function is not None:
        raise NotImplementedError("clone_model(input_tensors=..., clone_function=...) is not supported yet")
    return type(model).from_config(model.get_config())
