"""AdamW, SGDW and `decoupled` for Keras 3, on the tensorflow, jax and torch backends.

`optcompat.keras3.AdamW` and `SGDW` are `optcompat.AdamW` / `SGDW` (the signatures, equations
and examples above) as subclasses of `keras.optimizers.Optimizer`; where Keras 3 is your default
Keras, `optcompat.AdamW` is this one.  Importing this module without Keras 3 installed raises
`ImportError` naming the releases that have it.

Example:
    ```python
    # keras: Keras 3, on the backend KERAS_BACKEND names (jax, torch, tensorflow)
    from optcompat.keras3 import AdamW

    optimizer = AdamW(
        learning_rate=1e-3, weight_decay=4e-3, exclude_from_weight_decay=["bias"]
    )
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    model.save("model.keras")  # the optimizer, its settings and its state
    restored = keras.models.load_model("model.keras")
    assert type(restored.optimizer).__name__ == "AdamW"
    ```
"""

# Developer notes (the module docstring before the API reference rendered it for users):
# AdamW and SGDW for Keras 3 (``keras.optimizers.Optimizer``; tensorflow, jax, torch backends).
#
# The family's host (:class:`_Host`, what the core asks of Keras 3: :mod:`._host`) and its
# optimizer classes' methods; the optimizers are declared in :mod:`._optimizers` and the math
# is :mod:`._rule`, over ``keras.ops``.  What differs per backend is chosen once at import, as
# Keras chooses its own optimizer's backend class: the host (:class:`_TensorFlowHost`,
# :class:`_TorchHost`, :class:`_Host`) and a class of step methods -- :class:`_TensorFlow`
# (TensorFlow's fused kernels, :mod:`._tf`), :class:`_Torch` (all variables at once,
# :mod:`._torch_fast`), :class:`_Plain` (jax, and any other).  The host base class keeps
# everything else it does: schedules, clipping, EMA,
# gradient accumulation, loss scaling, ``tf.distribute`` hooks, stateless JAX training, saving.
import numpy as np

from . import _checks
from . import _detect
from . import _extension
from . import _host
from . import _names
from . import _saving
from . import _step
from . import _validate
from ._common import Decoupled
from ._optimizers import SPECS
from ._optimizers import make
from .state._access import Access

keras, _Optimizer = _detect.host("keras3")  # ImportError naming the releases if absent
ops = keras.ops

__all__ = ["AdamW", "SGDW"]

_Schedule = keras.optimizers.schedules.LearningRateSchedule


class _Host(_host.Host):
    """Keras 3 for the core (:class:`._host.Host`), on a backend whose values are concrete
    unless traced (jax: a tracer refuses ``float()``)."""

    family = "keras3"
    # Keras 2's and OptimizerV2's (a file another family wrote): Keras 3 compiles per model
    foreign_arguments = {
        "jit_compile": lambda value, config: True,
        "is_legacy_optimizer": lambda value, config: True,
        "decay": lambda value, config: not value,
    }

    xp = ops
    kind = "a Keras 3 optimizer"
    # Whether optcompat's own weight_decay variable is one of the optimizer's `variables`
    # (which the host's own AdamW does not have): JAX's stateless steps receive only those
    # (a variable read from outside them is a constant of the trace), so it must be there;
    # elsewhere a traced step reads it where it is, and it is kept out of the host's list.
    tracks_weight_decay = True

    def initial_rate(self, learning_rate):
        if not isinstance(learning_rate, _Schedule):
            return None
        return float(ops.convert_to_numpy(learning_rate(0)))

    def read_hyper(self, value):
        if not (ops.is_tensor(value) or isinstance(value, keras.Variable)):
            return _validate.OTHER
        try:
            return float(ops.convert_to_numpy(value))
        except Exception:  # a jax tracer, a symbolic TF tensor
            return None

    def scalar_variable(self, optimizer, name, value):
        # named as the base class names its learning rate's (`hold` decides the tracking)
        with keras.name_scope(optimizer.name, caller=optimizer):
            return keras.Variable(
                value, name=name, dtype=keras.backend.floatx(), trainable=False
            )

    def hold(self, optimizer, name, variable):
        # optcompat's own: out of the host's layout (_host_variables)
        if variable is not None:
            optimizer.__dict__.setdefault("_optcompat_held", []).append(variable)
        if self.tracks_weight_decay or variable is None:
            setattr(optimizer, name, variable)  # Keras's tracker adds it to `variables`
        else:
            object.__setattr__(optimizer, name, variable)  # past Keras's tracker

    def concrete(self, variable):
        """``variable``'s value as a float where it is concrete now; None inside a traced step."""
        try:
            return float(ops.convert_to_numpy(variable))
        except Exception:  # a jax tracer, a symbolic TF tensor
            return None

    def assign(self, optimizer, variable, value):
        optimizer.assign(variable, value)

    def value_of(self, variable):
        # a Keras Variable's tensor (a property); the tensorflow backend may hand the tf.Variable
        # itself, whose `value` is a method
        value = getattr(variable, "value", None)
        return variable if value is None or callable(value) else value

    def identity(self, optimizer, variable):
        # Keras's own key: the tensorflow backend hands a step the tf.Variable inside
        return optimizer._var_key(variable)

    def allows_decay(self, optimizer, variable):
        # honours opt.exclude_from_weight_decay(...)
        return optimizer._use_weight_decay(variable)


class _TensorFlowHost(_Host):
    tracks_weight_decay = False

    def eager(self):
        import tensorflow as tf

        return tf.executing_eagerly()

    def hold(self, optimizer, name, variable):
        _Host.hold(self, optimizer, name, variable)
        # a TF checkpoint keeps it by its name, not by position
        if variable is not None:
            optimizer._track_trackable(variable, name=variable.name)


class _TorchHost(_Host):
    tracks_weight_decay = False

    def concrete(self, variable):
        if _detect.torch_compiling():
            return None  # dynamo would break the graph on a float()
        return _Host.concrete(self, variable)

    def eager(self):
        return not _detect.torch_compiling()


def _tensorflow_hooks():
    """The tensorflow backend: TensorFlow's fused kernels (:class:`._tf.FusedKernels`: its
    eager test, dense gradients and ``_fast_one``), coefficients shared per step."""
    from . import _tf

    class _TensorFlow(_tf.FusedKernels):
        def apply(self, grads, trainable_variables=None):
            # coefficients built once per step, not per variable
            with _tf._tf_fast.step_scope(self):
                return super().apply(grads, trainable_variables)

    return _TensorFlow


class _Plain(object):
    """jax, and any other backend: the rule, variable by variable (no fast path)."""


class _Torch(object):
    """The torch backend: every variable at once (:mod:`._torch_fast`), except under
    ``torch.compile`` (``jit_compile=True``), where the per-variable rule compiles."""

    def _fast_modes(self):
        return ("foreach", "fused")

    def _settings(self):
        """The convention and the declaration's arguments, as Python values (what torch's
        kernels take)."""
        settings = {
            name: self._host.config_value(self, name) for name in self._kept
        }  # (a tensor given: its value)
        settings["convention"] = self.convention
        return settings

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        from . import _torch_fast

        # (variables' own rates: the rule)
        if (
            _torch_fast.mode(self.fast_path) is None
            or _detect.torch_compiling()
            or self._decay.multipliers
            or self._decay.decays
        ):
            # dynamo cannot trace the fused kernels (no fake tensor impl) nor read
            # coefficients as floats; inductor fuses the per-variable rule instead
            return super()._backend_update_step(
                grads, trainable_variables, learning_rate
            )

        def step():  # the 1-based step as an int (Keras 3.3's Variable has no __int__)
            return int(ops.convert_to_numpy(self.iterations)) + 1

        settings = self._settings()
        for dtype, decays, pairs in _torch_fast.groups(
            grads, trainable_variables, self._decays
        ):
            c = self._step_coefficients(ops, dtype, learning_rate, self.iterations)
            gs, vs = zip(*pairs)
            slots = [
                None if column[0] is None else [s.value for s in column]
                for column in zip(*(self._slot_values(v) for v in vs))
            ]
            _torch_fast.step(
                self.kind,
                self.fast_path,
                xs=[v.value for v in vs],
                gs=list(gs),
                slots=slots,
                c=c,
                decays=decays,
                t=step,
                settings=settings,
            )


# Chosen once: Keras 3 fixes its backend at import.  The host for the core, and the
# optimizer's backend methods (fast paths)
_BACKEND_NAME = keras.backend.backend()
HOST = {"tensorflow": _TensorFlowHost, "torch": _TorchHost}.get(_BACKEND_NAME, _Host)(
    keras, _Optimizer, "Keras 3"
)
# optcompat.schedules' classes for Keras 3 (over keras.ops: every backend)
SCHEDULES = HOST.schedules
_BACKEND = {"tensorflow": _tensorflow_hooks, "torch": lambda: _Torch}.get(
    _BACKEND_NAME, lambda: _Plain
)()


def _host_variables(optimizer):
    """``variables`` as the host's own AdamW / SGD lists them: without optcompat's own
    (``weight_decay``'s; keras_adamw's ``t_cur``, ``eta_t``: there on JAX only, see
    ``_Host.tracks_weight_decay``; their values are in ``get_config``)."""
    held = optimizer.__dict__.get("_optcompat_held", ())
    return [v for v in optimizer.variables if not any(v is h for h in held)]


def _checked_layout(optimizer, store):
    """``[(variable, value)]`` of a file's optimizer variables ``store``, in the host's layout
    or optcompat's own list (whichever has the file's count; None: neither), every shape
    checked (``ValueError`` naming the first that differs)."""
    n = len(store.keys())
    layout = next(
        (
            vs
            for vs in (_host_variables(optimizer), optimizer.variables)
            if len(vs) == n
        ),
        None,
    )
    if layout is None:
        return None
    values = [store[str(i)] for i in range(n)]
    for i, (variable, value) in enumerate(zip(layout, values)):
        if tuple(variable.shape) != tuple(getattr(value, "shape", ())):
            raise ValueError(
                "Cannot load the state of optimizer %r: saved variable %d has shape %s, but "
                "%s has shape %s (a file of another model or optimizer?). Nothing was loaded."
                % (
                    optimizer.name,
                    i,
                    tuple(getattr(value, "shape", ())),
                    getattr(variable, "path", variable.name),
                    tuple(variable.shape),
                )
            )
    return list(zip(layout, values))


class _Keras3(_BACKEND, Decoupled, _Optimizer):
    """The Keras 3 optimizer methods of :class:`._common.Decoupled`."""

    _host = HOST

    def _init_host(self, checked, name, kwargs):
        lr = checked["learning_rate"]
        # a tensor: its value (Keras keeps a float in a variable)
        if not (isinstance(lr, float) or callable(lr)):
            lr = HOST.read_hyper(lr)
        _Optimizer.__init__(
            self,
            learning_rate=lr,
            # The base class's own decay is switched off (_apply_weight_decay); the rule
            # applies it.  Passing the value keeps `weight_decay` in the host's config.
            weight_decay=checked["weight_decay"],
            **_validate.clipping(checked),
            name=name,
            **kwargs,
        )

    def _apply_weight_decay(self, variables):
        return None  # decay is part of the rule: each convention scales it differently

    # -- files list optimizer variables by position: the host's own list ------------------
    def save_own_variables(self, store):
        """Write the host's layout, so that the host's own optimizer reads the file."""
        for i, variable in enumerate(_host_variables(self)):
            store[str(i)] = ops.convert_to_numpy(variable)

    def load_own_variables(self, store):
        """Read the host's layout (a file of the host's own AdamW / SGD, or optcompat's), or
        optcompat's own list with its ``weight_decay``; any other count is skipped with the
        host's warning.  Every shape is checked before any variable changes."""
        pairs = _checked_layout(self, store)
        if pairs is None:
            return super().load_own_variables(store)
        for variable, value in pairs:
            variable.assign(value)

    # Keras 3's own slot names (Adam: momentum, velocity, velocity_hat)
    _SLOT_NAMES = dict(
        m="momentum", v="velocity", vhat="velocity_hat", momentum="momentum"
    )

    def build(self, var_list):
        if self.built:
            return
        self._check_names(var_list)
        # the first step's values where they are concrete now: JAX's trainer detaches the
        # model's variables before that step is traced, and an error inside it leaves them so
        _check_rates(self)
        super().build(var_list)
        self._build_slots(
            var_list,
            lambda v, key: self.add_variable_from_reference(
                v, name=self._SLOT_NAMES[key]
            ),
        )

    def _slot_values(self, variable):
        return self._slots_at(self._get_variable_index(variable))

    def update_step(self, gradient, variable, learning_rate):
        return _step.apply_one(
            self, gradient, variable, lambda: learning_rate, self.iterations
        )

    def apply(self, grads, trainable_variables=None):
        grads, trainable_variables = _checked(self, grads, trainable_variables)
        _check_rates(self)
        result = super().apply(grads, trainable_variables)
        self._after_step()  # (inside a stateless JAX step too: what it assigns is returned)
        return result

    def get_config(self):
        config = super().get_config()
        config.update(
            _saving.config(self),
            weight_decay=_saving.serialize_rate(self, self.weight_decay),
        )
        if isinstance(config.get("learning_rate"), float):
            config["learning_rate"] = _saving.as_given(
                self, "learning_rate", config["learning_rate"]
            )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(
            **_saving.deserialize_rates(
                cls, _saving.portable(cls, config), custom_objects
            )
        )


def _checked(optimizer, grads, trainable_variables):
    """``apply``'s arguments as lists, each gradient checked against its variable (a float
    gradient of another float dtype cast, as Keras's own optimizers do it)."""
    grads = list(grads)
    if trainable_variables is not None:
        trainable_variables = list(trainable_variables)
    variables = (
        optimizer._trainable_variables
        if trainable_variables is None
        else trainable_variables
    )
    grads = [_cast_float(g, v) for g, v in zip(grads, variables)] + grads[
        len(variables) :
    ]
    _checks.gradients(
        optimizer,
        zip(grads, variables),
        keras.backend.is_float_dtype,
        keras.backend.standardize_dtype,
    )
    return grads, trainable_variables


def _check_rates(optimizer):
    """A schedule's or callable's rates at the step counter, where it is concrete."""
    if (
        callable(optimizer._learning_rate)
        or optimizer._decay_store.function() is not None
    ) and HOST.eager():
        # only a schedule or callable can go bad; read the step counter for them where it
        # is concrete (Keras 3.0's Variable has no int(), hence convert_to_numpy)
        try:
            step = int(ops.convert_to_numpy(optimizer.iterations))
        except Exception:  # a jax tracer
            return
        _checks.rate(optimizer, optimizer._learning_rate, step)
        _checks.rate(optimizer, optimizer._decay_store.function(), step, "weight_decay")


def _cast_float(gradient, variable):
    """``gradient`` as a tensor (a NumPy array is one too, as Keras's own optimizers take
    it), in ``variable``'s dtype where both are floats of different dtypes."""
    if gradient is None or variable is None:
        return gradient
    # (sparse stays sparse)
    if not ops.is_tensor(gradient) and not hasattr(gradient, "indices"):
        gradient = ops.convert_to_tensor(gradient)
    g, v = (keras.backend.standardize_dtype(x.dtype) for x in (gradient, variable))
    if g == v or not (
        keras.backend.is_float_dtype(g) and keras.backend.is_float_dtype(v)
    ):
        return gradient
    return ops.cast(gradient, v)


def _register(cls):
    # "optcompat>AdamW", and the other families' names: their files load here (:mod:`._names`)
    cls = keras.saving.register_keras_serializable(package="optcompat")(cls)
    return _names.register(keras, "keras3", cls)


AdamW, SGDW = (make(spec, _Keras3, "Keras 3", __name__, _register) for spec in SPECS)


# -- optcompat.decoupled(OptimizerClass) ---------------------------------------------------
def decoupled(base):
    """`optcompat.decoupled(base)` for a Keras 3 optimizer class (`keras.optimizers.Nadam`, ...):
    its class `Decoupled<Base>`, or a `TypeError` for a class of another family."""
    return _extension.decoupled(base, _Extension, _register)


class _Extension(_extension.Extension):
    """Keras 3's hooks of :class:`._extension.Extension`: the decay where Keras 3 applies its
    own (``_apply_weight_decay``, before the step, in every backend and in stateless JAX steps)."""

    _host = HOST

    def _store_weight_decay(self, value):
        self.weight_decay = value  # the base class's attribute (its config has it)

    def _given_weight_decay(self):
        return self.weight_decay

    def _apply_weight_decay(self, variables):
        if self._decay_off():
            return
        lr, weight_decay = self.learning_rate, self._weight_decay_at(self.iterations)
        for variable in variables:
            if self._decays(variable):
                variable.assign(self._decayed_value(ops, variable, lr, weight_decay))

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # the step's (keras_adamw's eta_t): every variable's rate
        scale = self._rate_scale()
        if scale is not None:
            learning_rate = learning_rate * ops.cast(scale, learning_rate.dtype)
        parallel = _torch_parallel(type(self))
        if parallel is not None and any(
            self._rate_factor(v) != 1.0 for v in trainable_variables
        ):
            # Keras's torch optimizers step all variables in one call with one rate: with a
            # variable's own rate, Keras's per-variable loop (update_step each), as elsewhere
            return super(parallel, self)._backend_update_step(
                grads, trainable_variables, learning_rate
            )
        return super()._backend_update_step(grads, trainable_variables, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        factor = self._rate_factor(variable)  # a variable's own (an lr multiplier)
        if factor != 1.0:
            learning_rate = learning_rate * factor
        return super().update_step(gradient, variable, learning_rate)

    def apply(self, grads, trainable_variables=None):
        if callable(self.weight_decay) and not _detect.torch_compiling():
            try:  # the step counter where it is concrete (not a jax tracer)
                step = int(ops.convert_to_numpy(self.iterations))
            except Exception:
                step = None
            if step is not None:
                self._check_weight_decay_at(step)
        result = super().apply(grads, trainable_variables)
        self._after_step()
        return result

    def get_config(self):
        return self._extension_config(super().get_config())


def _torch_parallel(cls):
    """The torch backend's all-variables-at-once base in ``cls``'s bases (Keras 3 on torch:
    ``TorchParallelOptimizer``, which steps every variable with one rate), or None."""
    for base in cls.__mro__:
        if base.__name__ == "TorchParallelOptimizer" and base.__module__.startswith(
            "keras"
        ):
            return base
    return None


# -- optimizer state (optcompat.state), the host's own Adam / SGD too ---------------------
class _StateAccess(Access):
    family = "keras3"

    def index_of(self, optimizer, variable):
        return optimizer._get_variable_index(variable)

    def slots(self, optimizer, variables, keys):
        if keys and not optimizer.built:
            return None
        return super().slots(optimizer, variables, keys)

    def build(self, optimizer, variables):
        if not optimizer.built:
            optimizer.build(variables)

    def numpy(self, value):
        return np.asarray(ops.convert_to_numpy(value))

    def name(self, variable):
        return getattr(variable, "path", None) or variable.name

    def dtype(self, variable):
        return keras.backend.standardize_dtype(variable.dtype)


STATE = _StateAccess()
