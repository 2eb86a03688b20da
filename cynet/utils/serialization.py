"""The Keras `{"class_name": ..., "config": {...}}` convention, shared by initializers,
regularizers and the other registries: class names resolve only through cynet's own registry
(and the caller's `custom_objects`), never through imports."""
import inspect
from collections.abc import Callable
from typing import Any


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


# ------------------------------------------------------------------ custom objects (Keras's registry)
# One registry for layers, models, losses, metrics and optimizers written by users: a class
# decorated with @register_keras_serializable(package) is known by "package>ClassName" (and by its
# class name); `custom_objects=` of load_model / from_config and `custom_object_scope` add objects
# for one call or one block (a context variable: per thread). Nothing else is ever looked up.
import contextvars as _contextvars  # noqa: E402
import threading as _threading  # noqa: E402

_REGISTERED = {}              # "package>Name" -> object
_SCOPES: _contextvars.ContextVar[tuple[dict[str, Any], ...]] = _contextvars.ContextVar(
    "cynet_custom_object_scopes", default=())


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable[[Any], Any]:
    """Decorator registering a class (or function) for (de)serialization as "package>name".

    Args:
        package: Package part of the registered name (`"package>Name"`).
        name: Name part of the registered name; the class or function name when `None`.
    """
    if not isinstance(package, str) or ">" in package:
        raise ValueError(f"package must be a string without '>'; received package={package!r}")

    def decorator(obj):
        registered = f"{package}>{name or obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError(f"Cannot register {obj!r}: the class must define get_config()")
        _REGISTERED[registered] = obj
        if inspect.isclass(obj):
            obj._registered_name = registered
        return obj
    return decorator


def get_registered_name(obj: Any) -> str:
    """The name `obj` is registered under ("package>Name"), else its class or function name.

    Args:
        obj: A class, function or instance.
    """
    cls = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    return str(cls.__dict__.get("_registered_name") or getattr(cls, "__name__", str(cls)))


def get_custom_objects() -> dict[str, Any]:
    """The global registry (a dict "package>Name" -> object), as keras.saving.get_custom_objects."""
    return _REGISTERED


class CustomObjectScope:
    """A context manager making custom objects visible to deserialization (Keras's
    `keras.saving.CustomObjectScope`, also `custom_object_scope`): within
    `with CustomObjectScope({"MyLayer": MyLayer}):`, `load_model`, `model_from_json`,
    `deserialize_keras_object`, `layers.deserialize`, `from_config` and the initializer,
    regularizer, constraint, loss and metric lookups find the objects by name.

    The scope is per thread (a context variable). Nested scopes stack: an inner scope's names
    shadow an outer's, whose other names stay visible (Keras 3 replaces the outer scope's dict
    instead). The objects are not added to `get_custom_objects()`, as in Keras.

    Args:
        custom_objects: Dicts of `{name: object}` (class or function); `None` adds nothing. Keras
            takes one dict; several are merged, later ones winning.
    """

    def __init__(self, *custom_objects: dict[str, Any] | None) -> None:
        merged: dict[str, Any] = {}
        for table in custom_objects:
            if table is None:
                continue
            if not isinstance(table, dict) or not all(isinstance(key, str) for key in table):
                raise TypeError(f"custom_objects must be dicts of name (str) -> object; received "
                                f"custom_objects={table!r}")
            merged.update(table)
        self.custom_objects = merged
        self._tokens: dict[int, list[Any]] = {}   # thread -> its entries' tokens (one instance may serve threads)

    def __enter__(self) -> "CustomObjectScope":
        token = _SCOPES.set(_SCOPES.get() + ((self.custom_objects,) if self.custom_objects else ()))
        self._tokens.setdefault(_threading.get_ident(), []).append(token)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        tokens = self._tokens[_threading.get_ident()]
        _SCOPES.reset(tokens.pop())
        if not tokens:
            del self._tokens[_threading.get_ident()]


custom_object_scope = CustomObjectScope   # Keras's alias


def lookup_class(kind: str, name: str, registry: dict[str, Any], custom_objects: dict[str, Any] | None,
                 fallback: dict[str, Any] | None = None, valid: Callable[[], str] | None = None) -> Any:
    """The class a config names, for the `kind` module (initializers, regularizers, constraints):
    from `custom_objects`, then the module's own `registry`, then the active scopes and registered
    objects (get_registered_object), then `fallback`; else a ValueError listing the names
    `valid()` gives (default: the registry's).

    Args:
        kind: The module's word for its objects, for the error ("initializer").
        name: The class name a config gives.
        registry: The module's own classes by name.
        custom_objects: Optional dict mapping names to custom classes, looked up first.
        fallback: Optional names looked up last.
        valid: Optional callable giving the valid names listed in the error.
    """
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in registry:
        return registry[name]
    scoped = get_registered_object(name)
    if scoped is not None:
        return scoped
    if fallback and name in fallback:
        return fallback[name]
    names = ", ".join(sorted(registry)) if valid is None else valid()
    raise ValueError(f"Unknown {kind}: {name!r}. Valid names (case-sensitive) are: {names}")


def get_registered_object(name: str, custom_objects: dict[str, Any] | None = None) -> Any:
    """The custom object known by `name` (from `custom_objects`, the active scopes, or the
    registry, by registered name or plain class name), else None.

    Args:
        name: Name of the object (a default is generated when `None`).
        custom_objects: Optional dict mapping names to custom classes or functions used while deserializing.
    """
    for table in ((custom_objects or {}),) + _SCOPES.get()[::-1]:
        if name in table:
            return table[name]
    if name in _REGISTERED:
        return _REGISTERED[name]
    plain = name.split(">")[-1]
    for table in ((custom_objects or {}),) + _SCOPES.get()[::-1]:
        if plain in table:
            return table[plain]
    for key, obj in _REGISTERED.items():
        if key.split(">")[-1] == plain:
            return obj
    return None
