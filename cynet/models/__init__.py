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
