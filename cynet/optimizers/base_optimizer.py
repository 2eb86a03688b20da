"""The optimizer base class, with Keras 3 semantics.

An optimizer owns an iteration counter and, once built on a list of model variables, one or more
"slot" variables per model variable (momentums, velocities, ...). `apply_gradients` runs, in
Keras's order:

1. drop (gradient, variable) pairs whose gradient is None (with a warning);
2. unscale by `loss_scale_factor`;
3. gradient accumulation (`gradient_accumulation_steps`): accumulate, and only every N-th call
   update with the mean of the accumulated gradients;
4. clip (`clipnorm` per variable, `global_clipnorm` over all, or `clipvalue` elementwise);
5. decoupled weight decay, `variable -= variable * weight_decay * learning_rate`, for the
   variables not excluded by `exclude_from_weight_decay`;
6. the optimizer's `update_step` for each variable;
7. the exponential moving average of the weights (`use_ema`);
8. variable constraints (`variable.constraint`, if a layer set one);
9. `iterations += 1`.

All updates run in place on the variables' arrays, in the variables' own dtype (float32 stays
float32, hyperparameters are cast to it as Keras casts them), writing temporaries into scratch
buffers kept per variable, so a training step allocates no new arrays.
"""
import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .._validation import (ArgumentTypeError, argument_bool, argument_in_range, argument_int, argument_name,
                          argument_real, to_python)
from .._kernels.scratch import Scratch
from ..variables import Variable
from . import schedules as _schedules
from .._typing import ArrayLike, DTypeLike
from .schedules import LearningRateSchedule


def _snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# The optimizers' own hyperparameters, by argument name: the interval (low, high, high_open) a
# number must lie in, or bool. One table, so that an argument several optimizers take (momentum,
# rho, epsilon) is checked and worded alike in all of them.
HYPERPARAMETERS: dict[str, Any] = {
    "momentum": (0.0, 1.0, False),
    "rho": (0.0, 1.0, False),
    "beta_1": (0.0, 1.0, True),
    "beta_2": (0.0, 1.0, True),
    "epsilon": (0.0, None, False),
    "initial_accumulator_value": (0.0, None, False),
    "learning_rate_power": (None, 0.0, False),
    "l1_regularization_strength": (0.0, None, False),
    "l2_regularization_strength": (0.0, None, False),
    "l2_shrinkage_regularization_strength": (0.0, None, False),
    "beta": (None, None, False),
    "nesterov": bool,
    "amsgrad": bool,
    "centered": bool,
}


def constructor_arguments(scope):
    """The arguments a subclass's constructor passes on to `Optimizer.__init__`, from its
    `locals()` taken first thing: every named argument (its own hyperparameters among them) and
    the extra keywords. Each optimizer keeps its full Keras signature; the forwarding, the checks
    (`HYPERPARAMETERS`) and the config entries of its hyperparameters are the base class's."""
    arguments = {k: v for k, v in scope.items() if k not in ("self", "__class__", "kwargs")}
    arguments.update(scope.get("kwargs", {}))
    return arguments



# The arguments every optimizer takes, described once: `Optimizer.__init_subclass__` adds the
# entries a subclass's docstring does not write itself after its "**base arguments" line.
_BASE_ARGUMENTS_MARK = "**base arguments: see `Optimizer`."
_BASE_ARGUMENTS_DOC = """\
        weight_decay: `None` or a float >= 0; if set, `variable -= variable * weight_decay * lr` is applied
            before every update (decoupled weight decay).
        clipnorm: If set, each gradient is clipped so that its L2 norm is at most this value.
        clipvalue: If set, each gradient is clipped elementwise to `[-clipvalue, clipvalue]`.
        global_clipnorm: If set, all gradients are scaled so that their joint L2 norm is at most this value
            (at most one of the three clip options may be set).
        use_ema: Whether to keep an exponential moving average of the weights (see `ema_momentum`).
        ema_momentum: Momentum of the moving average of the weights when `use_ema=True`: `ema = ema_momentum *
            ema + (1 - ema_momentum) * w`.
        ema_overwrite_frequency: With `use_ema`, overwrite the weights with their moving average every this
            many steps (`None`: only at `finalize_variable_values`).
        loss_scale_factor: If set, gradients are divided by it (the loss is multiplied by it in `scale_loss`),
            for loss scaling.
        gradient_accumulation_steps: If set (int >= 2), variables are updated only every that many calls, with
            the mean of the accumulated gradients.
        name: Name of the optimizer, the prefix of its variables' paths.
"""


def _with_base_arguments(doc):
    """doc with the base arguments' entries it lacks added after its "**base arguments" line."""
    if not doc or _BASE_ARGUMENTS_MARK not in doc:
        return doc
    own = set(re.findall(r"^        (\w+):", doc, re.M))
    entries = re.findall(r"(        (\w+):.*\n(?:            .*\n)*)", _BASE_ARGUMENTS_DOC)
    added = "".join(text for text, name in entries if name not in own)
    line_end = doc.index("\n", doc.index(_BASE_ARGUMENTS_MARK)) + 1
    return doc[:line_end] + added + doc[line_end:]


class Optimizer:
    """Base class of all optimizers.

    Args:
        learning_rate: a float, a `LearningRateSchedule`, or a callable with no arguments that
            returns the learning rate.
        weight_decay: None or a float >= 0; if set, `variable -= variable * weight_decay * lr`
            is applied before every update.
        clipnorm: clip each gradient so that its L2 norm is at most this value.
        clipvalue: clip each gradient elementwise to [-clipvalue, clipvalue].
        global_clipnorm: scale all gradients so that their joint L2 norm is at most this value.
            At most one of the three clip options may be set.
        use_ema: keep an exponential moving average of the weights (`ema_momentum`), and
            overwrite the weights with it every `ema_overwrite_frequency` steps (if set) or at
            `finalize_variable_values`.
        loss_scale_factor: if set, gradients are divided by it (see `scale_loss`).
        gradient_accumulation_steps: if set (int >= 2), variables are updated only every that
            many calls, with the mean of the accumulated gradients.
        name: the optimizer's name, used as the prefix of its variables' paths.
        ema_momentum: Momentum of the moving average of the weights when `use_ema=True`: `ema = ema_momentum *
            ema + (1 - ema_momentum) * w`.
        ema_overwrite_frequency: With `use_ema`, overwrite the weights with their moving average every this
            many steps (`None`: only at `finalize_variable_values`).

    Subclasses override `build(var_list)` (call `super().build(var_list)` first, then create slots
    with `add_variable_from_reference` / `add_optimizer_variables`) and `update_step(gradient,
    variable, learning_rate)`. A subclass names its own hyperparameters in `_hyperparameters`
    (keys of `HYPERPARAMETERS`) and passes them with the base arguments:
    `super().__init__(**constructor_arguments(locals()))`; each is then checked, set as an
    attribute of its name and written by `get_config()`. (Other arguments a subclass checks
    itself, and adds to `get_config()`.)
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__doc__ = _with_base_arguments(cls.__dict__.get("__doc__"))

    _hyperparameters: tuple[str, ...] = ()

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float],
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        owner = self.__class__.__name__
        hyperparameters = {arg: kwargs.pop(arg) for arg in self._hyperparameters if arg in kwargs}
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.", stacklevel=3)
        if kwargs:
            raise ValueError(f"{owner}: argument(s) not recognized: {kwargs}")
        if name is None:
            name = _snake_case(owner)
        self.name = argument_name(owner, name)

        for arg, value in (("weight_decay", weight_decay), ("clipnorm", clipnorm), ("clipvalue", clipvalue),
                           ("global_clipnorm", global_clipnorm)):
            setattr(self, arg, None if value is None else argument_in_range(owner, arg, value, low=0.0))
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}"
            )

        self.use_ema = argument_bool(owner, "use_ema", use_ema)
        if self.use_ema:
            self.ema_momentum = argument_in_range(owner, "ema_momentum", ema_momentum, 0.0, 1.0)
            if ema_overwrite_frequency is not None:
                ema_overwrite_frequency = argument_int(owner, "ema_overwrite_frequency", ema_overwrite_frequency, 1)
        else:
            ema_momentum = to_python(ema_momentum)
            self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency

        if loss_scale_factor is not None:
            loss_scale_factor = argument_real(owner, "loss_scale_factor", loss_scale_factor)
            if loss_scale_factor == 0:
                raise ValueError(f"{owner}: argument `loss_scale_factor` must be nonzero")
        self.loss_scale_factor = loss_scale_factor

        if gradient_accumulation_steps is not None:
            gradient_accumulation_steps = to_python(gradient_accumulation_steps)
            if isinstance(gradient_accumulation_steps, bool) or not isinstance(gradient_accumulation_steps, int) or (
                gradient_accumulation_steps < 2
            ):
                raise ValueError(
                    "`gradient_accumulation_steps` must be an integer >= 2. "
                    f"Received: gradient_accumulation_steps={gradient_accumulation_steps}"
                )
        self.gradient_accumulation_steps = gradient_accumulation_steps

        self.built = False
        self._variables: list[Variable] = []
        self._trainable_variables: list[Variable] = []
        self._trainable_variables_indices: dict[int, int] = {}
        self._scratch_pool = None    # a Scratch of the "optimizer" pool, made at the first step
        self._step_cache: dict[Any, Any] = {}
        self._exclude_vars: list[Variable] = []
        self._exclude_from_weight_decay: set[int] = set()
        self._exclude_from_weight_decay_pattern: re.Pattern[str] | None = None
        self._exclude_from_weight_decay_names: list[str] | None = None
        self._exclude_from_weight_decay_cache: dict[Any, Any] = {}

        self._iterations = Variable(np.zeros((), dtype=np.int64), dtype="int64", trainable=False, name="iteration")
        self._iterations.path = f"{self.name}/iteration"
        self._variables.append(self._iterations)

        self._learning_rate = self._coerce_learning_rate(learning_rate)

        for arg, value in hyperparameters.items():
            rule = HYPERPARAMETERS[arg]
            if rule is bool:
                setattr(self, arg, argument_bool(owner, arg, value))
            else:
                low, high, high_open = rule
                setattr(self, arg, argument_in_range(owner, arg, value, low, high, high_open=high_open))

    # ----------------------------------------------------------------------------- learning rate

    def _coerce_learning_rate(self, learning_rate):
        if isinstance(learning_rate, _schedules.LearningRateSchedule) or callable(learning_rate):
            return learning_rate
        value = to_python(learning_rate)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgumentTypeError(
                "Argument `learning_rate` should be float, or an instance of LearningRateSchedule, or a callable "
                "(that takes in the current iteration value and returns the corresponding learning rate value). "
                f"Received instead: learning_rate={learning_rate!r}"
            )
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"Argument `learning_rate` must be finite; received learning_rate={value}")
        return value

    @property
    def learning_rate(self) -> float:
        """The current learning rate as a float (a schedule is evaluated at the iteration count)."""
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if isinstance(learning_rate, _schedules.LearningRateSchedule) or callable(learning_rate):
            self._learning_rate = learning_rate
            return
        if isinstance(self._learning_rate, _schedules.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its `learning_rate` "
                "constructor argument, hence its learning rate is not settable. If you need the learning rate "
                "to be settable, you should instantiate the optimizer with a float `learning_rate` argument."
            )
        self._learning_rate = self._coerce_learning_rate(learning_rate)

    def _get_current_learning_rate(self):
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule):
            return float(lr(int(self._iterations.value)))
        if callable(lr):
            return float(lr())
        return lr

    # -------------------------------------------------------------------------------- variables

    @property
    def iterations(self) -> int:
        """The number of steps applied (with gradient accumulation: of actual updates)."""
        count = int(self._iterations.value)
        if self.gradient_accumulation_steps:
            return count // self.gradient_accumulation_steps
        return count

    @property
    def variables(self) -> list[Variable]:
        """The optimizer's state: the iteration counter, then every slot variable in build order."""
        return self._variables[:]

    def _var_key(self, variable):
        return id(variable)

    def _get_variable_index(self, variable):
        return self._trainable_variables_indices[self._var_key(variable)]

    def build(self, variables: list[Variable]) -> None:
        """Record the model variables and create the base class's own slots (EMA, accumulators).

        Subclasses call this first, then create their slots.

        Args:
            variables: The model variables the optimizer will update.
        """
        variables = list(variables)
        for v in variables:
            if not isinstance(getattr(v, "value", None), np.ndarray):
                raise ArgumentTypeError(
                    f"{self.__class__.__name__}.build expects cynet Variables; received {type(v).__name__}"
                )
        if self.use_ema:
            self._model_variables_moving_average = self.add_optimizer_variables(variables, "average")
        if self.gradient_accumulation_steps:
            self._accumulated_gradients = []
        for i, variable in enumerate(variables):
            self._trainable_variables_indices[self._var_key(variable)] = i
            if self.gradient_accumulation_steps:
                self._accumulated_gradients.append(
                    self.add_variable_from_reference(variable, name="gradient_accumulator")
                )
        self._trainable_variables = variables[:]
        self.built = True

    def add_variable(self, shape: Sequence[int], initializer: Any = "zeros", dtype: DTypeLike | None = None,
                     name: str | None = None) -> Variable:
        """Create and track an optimizer variable (not trainable).

        `initializer` is "zeros", "ones", a number (constant fill) or a callable
        `f(shape, dtype)`; `dtype` defaults to float32.

        Args:
            shape: Shape of the variable.
            initializer: `"zeros"`, `"ones"`, a number (constant fill) or a callable `f(shape, dtype)`.
            dtype: Dtype of the variable (float32 when `None`).
            name: Name of the variable.
        """
        dtype = np.dtype("float32" if dtype is None else dtype)
        shape = tuple(shape)
        if isinstance(initializer, str):
            if initializer == "zeros":
                value = np.zeros(shape, dtype=dtype)
            elif initializer == "ones":
                value = np.ones(shape, dtype=dtype)
            else:
                raise ValueError(f"add_variable: unknown initializer {initializer!r} (use 'zeros', 'ones' or a number)")
        elif callable(initializer):
            value = np.asarray(initializer(shape, dtype=dtype), dtype=dtype)
        else:
            value = np.full(shape, argument_real(self.__class__.__name__, "initializer", initializer), dtype=dtype)
        name = name or "variable"
        variable = Variable(value, dtype=dtype, trainable=False, name=name)
        variable.path = f"{self.name}/{name}"
        self._variables.append(variable)
        return variable

    def add_variable_from_reference(self, reference_variable: Variable, name: str | None = None,
                                    initializer: Any = "zeros") -> Variable:
        """An optimizer variable shaped and typed like `reference_variable`, named
        `{reference path with '/' -> '_'}_{name}`.

        Args:
            reference_variable: The model variable whose shape and dtype the slot takes.
            name: Suffix of the slot's name.
            initializer: `"zeros"`, `"ones"`, a number (constant fill) or a callable `f(shape, dtype)`.
        """
        name = name or "var"
        ref = getattr(reference_variable, "path", None) or str(reference_variable.name)
        name = ref.replace("/", "_").replace(":", "_") + "_" + name
        return self.add_variable(
            shape=reference_variable.shape, initializer=initializer, dtype=reference_variable.dtype, name=name
        )

    def add_optimizer_variables(self, trainable_variables: list[Variable], name: str | list[str],
                                initializer: Any = "zeros") -> Any:
        """One slot per variable for `name` (a string: returns a list), or for each of several names
        (a list of strings: returns a tuple of lists, created interleaved variable by variable).

        Args:
            trainable_variables: The model variables (one slot each, or the variables to update/build on).
            name: Slot name (a string), or a list of slot names.
            initializer: `"zeros"`, `"ones"`, a number (constant fill) or a callable `f(shape, dtype)`.
        """
        if isinstance(name, str):
            return [self.add_variable_from_reference(v, name=name, initializer=initializer) for v in trainable_variables]
        names = list(name)
        inits = list(initializer) if isinstance(initializer, (list, tuple)) else [initializer] * len(names)
        if len(inits) != len(names):
            raise ValueError(
                f"The number of provided names must match the number of provided initializers. "
                f"Received name='{name}', initializer='{initializer}'"
            )
        out: tuple[list[Variable], ...] = tuple([] for _ in names)
        for v in trainable_variables:
            for i, (n, init) in enumerate(zip(names, inits)):
                out[i].append(self.add_variable_from_reference(v, name=n, initializer=init))
        return out

    def get_variable_values(self) -> list[np.ndarray]:
        """Copies of the values of `variables` (the state to save)."""
        return [v.value.copy() for v in self._variables]

    def set_variable_values(self, values: Sequence[ArrayLike],
                            trainable_variables: list[Variable] | None = None) -> None:
        """Restore the state saved by `get_variable_values`.

        The optimizer must be built on the same model variables (in the same order) as the one that
        was saved; pass `trainable_variables` to build it here if it is not built yet.

        Args:
            values: The list of arrays `get_variable_values()` returned.
            trainable_variables: The model variables (one slot each, or the variables to update/build on).
        """
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    f"{self.__class__.__name__}: cannot set the variable values of an optimizer that has not been "
                    "built yet. Call `optimizer.build(trainable_variables)` first, or pass `trainable_variables`."
                )
            self.build(list(trainable_variables))
        values = list(values)
        if len(values) != len(self._variables):
            raise ValueError(
                f"{self.__class__.__name__}: expected {len(self._variables)} arrays (one per optimizer variable), "
                f"received {len(values)}"
            )
        arrays = []
        for var, value in zip(self._variables, values):
            arr = np.asarray(value)
            if arr.shape != var.shape:
                raise ValueError(
                    f"{self.__class__.__name__}: optimizer variable '{var.path}' has shape {var.shape}; "
                    f"the value given has shape {arr.shape}"
                )
            if arr.dtype.kind not in "biuf":
                raise ArgumentTypeError(
                    f"{self.__class__.__name__}: value for optimizer variable '{var.path}' must be numeric; "
                    f"received dtype {arr.dtype}"
                )
            arrays.append(arr)
        for var, arr in zip(self._variables, arrays):
            var.assign(arr)

    def set_weights(self, weights: Sequence[ArrayLike]) -> None:
        """Keras's name for `set_variable_values` (the optimizer must be built).

        Args:
            weights: The list of arrays `get_weights()` returned.
        """
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. Please call "
                "`optimizer.build(trainable_variables)` to create the optimizer weights before calling `set_weights()`."
            )
        self.set_variable_values(weights)

    def get_weights(self) -> list[np.ndarray]:
        """The optimizer's state (iterations, then every slot) as a list of NumPy arrays; Keras's older name for
        `get_variable_values`.
        """
        return self.get_variable_values()

    def save_own_variables(self, store: dict[str, Any]) -> None:
        """Write the state into a dict-like `store` under keys "0", "1", ... (as Keras does).

        Args:
            store: A dict-like mapping of string keys to arrays.
        """
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.value.copy()

    def load_own_variables(self, store: dict[str, Any]) -> None:
        """Read the state written by `save_own_variables` (warns and skips on a count mismatch, as Keras).

        Args:
            store: A dict-like mapping of string keys to arrays.
        """
        if len(store.keys()) != len(self._variables):
            msg = (
                f"Skipping variable loading for optimizer '{self.name}', because it has {len(self._variables)} "
                f"variables whereas the saved optimizer has {len(store.keys())} variables. "
            )
            if len(self._variables) == 1:
                msg += "This is likely because the optimizer has not been called/built yet."
            warnings.warn(msg, stacklevel=2)
            return
        self.set_variable_values([store[str(i)] for i in range(len(self._variables))])

    # --------------------------------------------------------------------------- scratch buffers

    def _scratch(self, variable, slot=0):
        """A reusable temporary array shaped and typed like `variable` (not part of the state).

        Slots 0 and 1 are for `update_step` and weight decay; slot "grad" holds preprocessed
        gradients. The buffers are this optimizer's Scratch of cynet._kernels.scratch (the one
        bounded scratch cache, dropped by cynet.utils.clear_session()).
        """
        if self._scratch_pool is None:
            self._scratch_pool = Scratch("optimizer")
        value = variable.value
        return self._scratch_pool.get((id(variable), slot), value.shape, value.dtype)

    @property
    def _buffers(self):
        """The scratch buffers this optimizer keeps, {((id(variable), slot), dtype): 1-D array}."""
        return {} if self._scratch_pool is None else self._scratch_pool.buffers

    def _step_scalars(self, key, compute):
        """`compute()` memoized for the current step under `key` (per-step scalar constants such
        as Adam's bias corrections, shared by all variables of one dtype)."""
        key = (key, int(self._iterations.value))
        value = self._step_cache.get(key)
        if value is None:
            value = self._step_cache[key] = compute()
        return value

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_scratch_pool"] = None
        state["_step_cache"] = {}
        state.pop("_slot_views", None)   # (views of the slots, checked once: see Adam._slots_of)
        state.pop("_power_tables", None)
        state.pop("_alpha_table", None)
        state["_exclude_from_weight_decay"] = set()
        state["_exclude_from_weight_decay_cache"] = {}
        state["_trainable_variables_indices"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # The id()-keyed tables do not survive pickling or copying: rebuild them.
        self._trainable_variables_indices = {self._var_key(v): i for i, v in enumerate(self._trainable_variables)}
        self._exclude_from_weight_decay = {self._var_key(v) for v in self._exclude_vars}

    # ---------------------------------------------------------------------------------- applying

    def scale_loss(self, loss: Any) -> Any:
        """The loss multiplied by `loss_scale_factor` (unchanged when it is None).

        Args:
            loss: The loss value.
        """
        if self.loss_scale_factor is not None:
            return loss * self.loss_scale_factor
        return loss

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> int:
        """Apply an iterable of (gradient, variable) pairs; returns `iterations`.

        Args:
            grads_and_vars: Iterable of `(gradient, variable)` pairs.
        """
        pairs = list(grads_and_vars)
        for p in pairs:
            if not isinstance(p, (tuple, list)) or len(p) != 2:
                raise ArgumentTypeError(
                    f"apply_gradients expects an iterable of (gradient, variable) pairs; received an item {p!r}"
                )
        if not pairs:
            return self.iterations
        grads, variables = zip(*pairs)
        self.apply(list(grads), list(variables))
        return self.iterations

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Variable] | None = None) -> None:
        """Update `trainable_variables` with `grads` (one per variable, None to skip a variable).

        Without `trainable_variables` the optimizer must be built, and `grads` match the variables
        it was built with, one to one. The first call with variables builds the optimizer.

        Args:
            grads: One gradient per variable (`None` skips a variable).
            trainable_variables: The model variables (one slot each, or the variables to update/build on).
        """
        grads = list(grads)
        if len(grads) == 0:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be built on a list of "
                    "variables. Call `optimizer.build(trainable_variables)` first."
                )
            if len(grads) != len(self._trainable_variables):
                raise ValueError(
                    f"When passing `grads` as a list of gradients, they must match the variables the optimizer was "
                    f"built with one-to-one. Received {len(grads)} gradients, but the optimizer is tracking "
                    f"{len(self._trainable_variables)} trainable variables."
                )
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if len(grads) != len(trainable_variables):
                raise ValueError(
                    f"Received {len(grads)} gradients for {len(trainable_variables)} variables; they must match."
                )
            if not self.built:
                self.build(trainable_variables)
                self.built = True
            self._check_variables_are_known(trainable_variables)

        variables: Sequence[Variable] = trainable_variables   # (both branches above set it)
        if any(g is None for g in grads):
            grads, variables = self._filter_empty_gradients(grads, variables)
        self._step_cache = {}
        grads = [self._as_gradient(g, v) for g, v in zip(grads, variables)]
        if self.loss_scale_factor is not None:
            scaled = []
            for g, v in zip(grads, variables):
                buf = self._scratch(v, "grad")
                np.divide(g, self.loss_scale_factor, out=buf)
                scaled.append(buf)
            grads = scaled

        self._backend_apply_gradients(grads, variables)

        for variable in variables:
            constraint = getattr(variable, "constraint", None)
            if constraint is not None:
                variable.assign(constraint(variable.value))

        count = self._iterations.value
        count[()] = count[()] + 1   # (in place, as `+= 1`, without a ufunc call on a 0-d array)

    def _check_variables_are_known(self, variables):
        known = self._trainable_variables_indices
        for v in variables:
            if self._var_key(v) not in known:
                raise ValueError(
                    f"Unknown variable: {v!r}. This optimizer can only be called for the variables it was originally "
                    "built with. When working with a new set of variables, you should recreate a new optimizer "
                    "instance."
                )

    def _filter_empty_gradients(self, grads, variables):
        kept_grads, kept_vars, missing = [], [], []
        for g, v in zip(grads, variables):
            if g is None:
                missing.append(getattr(v, "path", getattr(v, "name", repr(v))))
            else:
                kept_grads.append(g)
                kept_vars.append(v)
        if not kept_grads:
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss. If using "
                "`model.compile()`, did you forget to provide a `loss` argument?",
                stacklevel=3,
            )
        return kept_grads, kept_vars

    def _as_gradient(self, grad, variable):
        value = variable.value
        if type(grad) is np.ndarray and grad.dtype == value.dtype and grad.shape == value.shape:
            return grad   # (the backward pass's own gradients, every step)
        g = np.asarray(grad)
        if g.dtype.kind not in "biuf":
            raise ArgumentTypeError(
                f"the gradient for variable '{variable.path}' must be a real numeric array; received dtype {g.dtype}"
            )
        if g.shape != variable.shape:
            raise ValueError(
                f"the gradient for variable '{variable.path}' has shape {g.shape}; expected {variable.shape}"
            )
        if g.dtype != variable.dtype:
            g = g.astype(variable.dtype)
        return g

    def _backend_apply_gradients(self, grads, trainable_variables):
        if self.gradient_accumulation_steps:
            steps = self.gradient_accumulation_steps
            is_update_step = (int(self._iterations.value) + 1) % steps == 0
            accumulators = [self._accumulated_gradients[self._get_variable_index(v)] for v in trainable_variables]
            if is_update_step:
                averaged = []
                for g, acc, v in zip(grads, accumulators, trainable_variables):
                    buf = self._scratch(v, "grad")
                    np.add(g, acc.value, out=buf)
                    np.divide(buf, steps, out=buf)
                    averaged.append(buf)
                grads = self._clip_gradients(averaged, trainable_variables)
                self._apply_weight_decay(trainable_variables)
                self._backend_update_step(grads, trainable_variables, self.learning_rate)
                for acc in self._accumulated_gradients:
                    acc.value.fill(0)
            else:
                for g, acc in zip(grads, accumulators):
                    np.add(g, acc.value, out=acc.value)
        else:
            grads = self._clip_gradients(grads, trainable_variables)
            self._apply_weight_decay(trainable_variables)
            self._backend_update_step(grads, trainable_variables, self.learning_rate)

        if self.use_ema:
            self._update_model_variables_moving_average(self._trainable_variables)
            if self.ema_overwrite_frequency and (self.iterations + 1) % self.ema_overwrite_frequency == 0:
                self._overwrite_model_variables_with_average_value(self._trainable_variables)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        for grad, variable in zip(grads, trainable_variables):
            self.update_step(grad, variable, learning_rate)

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        """Update `variable` (in place) from `gradient`; implemented by each optimizer.

        Args:
            gradient: The gradient of the variable, an array of its shape.
            variable: The variable to update.
            learning_rate: The learning rate at this step (a float).
        """
        raise NotImplementedError(f"{self.__class__.__name__} must implement update_step(gradient, variable, learning_rate)")

    # ---------------------------------------------------------------------------------- clipping

    def _clip_gradients(self, grads, variables):
        if self.clipnorm and self.clipnorm > 0:
            return [self._clip_by_norm(g, v) for g, v in zip(grads, variables)]
        if self.global_clipnorm and self.global_clipnorm > 0:
            return self._clip_by_global_norm(grads, variables)
        if self.clipvalue and self.clipvalue > 0:
            out = []
            for g, v in zip(grads, variables):
                buf = self._scratch(v, "grad")
                np.clip(g, -self.clipvalue, self.clipvalue, out=buf)
                out.append(buf)
            return out
        return grads

    @staticmethod
    def _sum_of_squares(g):
        flat = g.reshape(-1)
        return np.dot(flat, flat)

    def _clip_by_norm(self, g, variable):
        dt = g.dtype.type
        l2sum = self._sum_of_squares(g)
        l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
        buf = self._scratch(variable, "grad")
        np.multiply(g, dt(self.clipnorm), out=buf)
        np.divide(buf, np.maximum(l2norm, dt(self.clipnorm)), out=buf)
        return buf

    def _clip_by_global_norm(self, grads, variables):
        squares = [self._sum_of_squares(g) for g in grads]
        dtype = np.result_type(*[g.dtype for g in grads])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            norm = np.sqrt(np.sum(np.array(squares, dtype=dtype)))
            dt = dtype.type
            scale = dt(self.global_clipnorm) * np.minimum(dt(1.0) / norm, dt(1.0 / self.global_clipnorm))
            # A finite norm leaves the scale unchanged; inf or NaN turns it into NaN (as Keras).
            scale = scale + (norm - norm)
        out = []
        for g, v in zip(grads, variables):
            buf = self._scratch(v, "grad")
            np.multiply(g, g.dtype.type(scale), out=buf)
            out.append(buf)
        return out

    # ------------------------------------------------------------------------------ weight decay

    def exclude_from_weight_decay(self, var_list: Iterable[Variable] | None = None,
                                  var_names: Iterable[str] | None = None) -> None:
        """Exclude variables from weight decay: those in `var_list`, and those whose name contains
        (regular-expression search) any string in `var_names`, e.g. `var_names=["bias"]`.

        Args:
            var_list: List of variables.
            var_names: List of strings; variables whose name contains one of them (regular-expression search)
                are excluded.
        """
        self._exclude_vars = list(var_list) if var_list else []
        self._exclude_from_weight_decay = {self._var_key(v) for v in self._exclude_vars}
        if var_names:
            names = list(var_names)
            for n in names:
                if not isinstance(n, str):
                    raise ArgumentTypeError(
                        f"exclude_from_weight_decay: `var_names` must be strings; received {n!r}"
                    )
            self._exclude_from_weight_decay_names = names
            self._exclude_from_weight_decay_pattern = re.compile("|".join(sorted(set(names))))
        else:
            self._exclude_from_weight_decay_names = None
            self._exclude_from_weight_decay_pattern = None
        self._exclude_from_weight_decay_cache = {}

    def _use_weight_decay(self, variable):
        key = self._var_key(variable)
        cached = self._exclude_from_weight_decay_cache.get(key)
        if cached is not None:
            return cached
        use = True
        if key in self._exclude_from_weight_decay:
            use = False
        elif self._exclude_from_weight_decay_pattern is not None and re.search(
            self._exclude_from_weight_decay_pattern, str(variable.name)
        ):
            use = False
        self._exclude_from_weight_decay_cache[key] = use
        return use

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        lr = self.learning_rate
        for variable in variables:
            if self._use_weight_decay(variable):
                dt = variable.dtype.type
                w = variable.value
                tmp = self._scratch(variable, 0)
                np.multiply(w, dt(self.weight_decay), out=tmp)
                np.multiply(tmp, dt(lr), out=tmp)
                np.subtract(w, tmp, out=w)

    # ----------------------------------------------------------------------------------------- EMA

    def _update_model_variables_moving_average(self, trainable_variables):
        first_step = self.iterations == 0
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            dt = variable.dtype.type
            momentum = dt(0.0) if first_step else dt(self.ema_momentum)
            avg = average.value
            tmp = self._scratch(variable, 0)
            np.multiply(avg, momentum, out=avg)
            np.multiply(variable.value, dt(1) - momentum, out=tmp)
            np.add(avg, tmp, out=avg)

    def _overwrite_model_variables_with_average_value(self, trainable_variables):
        if len(trainable_variables) != len(self._model_variables_moving_average):
            raise ValueError(
                f"The length of model variables ({len(trainable_variables)}) to override does not match the length "
                f"of model variables stored in the optimizer ({len(self._model_variables_moving_average)}). "
                "Please check if the optimizer was called on your model."
            )
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            variable.assign(average.value)

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        """At the end of training: with `use_ema`, overwrite the variables with their moving averages.

        Args:
            var_list: List of variables.
        """
        if self.use_ema:
            self._overwrite_model_variables_with_average_value(list(var_list))

    # ----------------------------------------------------------------------------------- config

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as a JSON-compatible dict (a schedule as {"class_name", "config"})."""
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule):
            lr = _schedules.serialize(lr)
        elif callable(lr):
            lr = float(lr())
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            **{arg: getattr(self, arg) for arg in self._hyperparameters},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> "Optimizer":
        """An optimizer from `get_config()` output (a schedule given as a dict is deserialized).

        Args:
            config: The dictionary `get_config()` returned.
            custom_objects: Optional dict of custom objects (e.g. a custom learning-rate schedule) used while
                deserializing.
        """
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"], custom_objects=custom_objects)
        return cls(**config)

    def __repr__(self):
        lr = self._learning_rate
        lr = repr(lr) if not isinstance(lr, float) else f"{lr:g}"
        return f"<{self.__class__.__name__} name='{self.name}' learning_rate={lr} iterations={self.iterations}>"

