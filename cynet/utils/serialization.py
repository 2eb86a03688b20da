"""The Keras `{"class_name": ..., "config": {...}}` convention, shared by initializers,
regularizers and the other registries: class names resolve only through cynet's own registry
(and the caller's `custom_objects`), never through imports."""
import inspect


def from_config_dict(kind, config, lookup):
    """Build the object a `{"class_name", "config"}` dict describes.

    kind: what is being built, for messages ("initializer", "regularizer", ...).
    lookup: `lookup(class_name)` -> a class (or an object, returned as is); raises ValueError when unknown.
    Keras's extra keys ("module", "registered_name") are ignored.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not deserialize {kind}: expected a dict with keys 'class_name' and 'config'; "
                         f"received {config!r}")
    name = config["class_name"]
    if not isinstance(name, str):
        raise ValueError(f"{kind.capitalize()} 'class_name' must be a string; received {name!r}")
    cls = lookup(name)
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ValueError(f"{kind.capitalize()} 'config' must be a dict; received {inner!r}")
    if not inspect.isclass(cls):
        return cls
    try:
        return cls.from_config(inner) if hasattr(cls, "from_config") else cls(**inner)
    except TypeError as e:
        raise ValueError(f"Invalid config for {kind} {name!r}: {inner!r} ({e})") from None


def get_callable(kind, identifier, deserialize):
    """None -> None; a name or config dict -> `deserialize(...)`; a class -> an instance; a callable as is."""
    if identifier is None:
        return None
    obj = deserialize(identifier) if isinstance(identifier, (dict, str)) else identifier
    if callable(obj):
        return obj() if inspect.isclass(obj) else obj
    raise ValueError(f"Could not interpret {kind} identifier: {identifier!r}")
