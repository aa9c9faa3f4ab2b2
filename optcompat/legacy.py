"""AdamW, SGDW and `decoupled` for OptimizerV2: TF 1.15-2.15 and `tf_keras.optimizers.legacy`.

`optcompat.legacy.AdamW` and `SGDW` are `optcompat.AdamW` / `SGDW` (the signatures, equations
and examples above) as subclasses of `tf.keras.optimizers.Optimizer` (TF 1.15-2.10),
`tf.keras.optimizers.legacy.Optimizer` (TF 2.11-2.15) or `tf_keras.optimizers.legacy.Optimizer`
-- the API that TensorFlow Addons and keras-adamw extended; where that is your default Keras (TF
1.15-2.10), `optcompat.AdamW` is this one.  Hyperparameters are the host's: `opt.learning_rate
= x` (or `K.set_value`) takes effect on the next step, also inside a traced `tf.function`.
Importing this module where none is installed raises `ImportError` naming the releases that
have it.

Example:
    ```python
    # keras: this family's, tf.keras (TF 1.15-2.15) or tf_keras
    from optcompat.legacy import AdamW

    optimizer = AdamW(learning_rate=1e-3, weight_decay=4e-3)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    # OptimizerV2's hyperparameters are variables: a new rate is taken by the next step,
    # inside the train function already traced
    optimizer.learning_rate = 1e-4
    model.fit(x, y, epochs=1, verbose=0)
    assert abs(float(keras.backend.get_value(optimizer.learning_rate)) - 1e-4) < 1e-9
    ```
"""

# Developer notes (the module docstring before the API reference rendered it for users):
# AdamW and SGDW for the OptimizerV2 API (``_set_hyper`` / ``add_slot`` / ``_resource_apply_*``).
#
# The host is ``tf.keras.optimizers.Optimizer`` in TensorFlow 1.15-2.10 (the default family
# there), ``tf.keras.optimizers.legacy.Optimizer`` in 2.11-2.15 and
# ``tf_keras.optimizers.legacy.Optimizer`` -- the API that keras-adamw and TensorFlow Addons
# extended.  The family's hooks only (:mod:`._common` lists them; the optimizers are declared
# in :mod:`._optimizers`), done the way this API expects:
#
# * hyperparameters through ``_set_hyper`` / ``_get_hyper``: the learning rate, betas,
#   momentum and weight decay become ``tf.Variable`` s when the optimizer is built, so
#   ``opt.learning_rate = x`` (or ``K.set_value``) takes effect on the next step, eagerly or
#   inside an already traced ``tf.function``; ``get_config`` gives plain Python values;
# * slots through ``add_slot``: ``m``, ``v`` (and ``vhat`` only with ``amsgrad``) for AdamW,
#   ``momentum`` only when ``momentum > 0`` for SGDW;
# * the step's coefficients once per (device, dtype) in ``_prepare_local``;
# * ``_resource_apply_dense`` and ``_resource_apply_sparse`` both run the one rule.  A sparse
#   gradient (``tf.IndexedSlices``; duplicate indices summed by the base class) gives exactly
#   the dense result -- every row's moments decay and every weight gets its decay each step,
#   as the host's own Adam does and as the other families do.
#
# The base class keeps what it does: schedules and callables, inverse-time ``decay``,
# ``clipnorm`` / ``clipvalue`` / ``global_clipnorm`` (where the release has them),
# gradient aggregation across replicas, ``minimize``, checkpointing.  Private APIs of the
# host are touched only in this module.
import warnings

import numpy as np

from . import _checks
from . import _detect
from . import _extension
from . import _host
from . import _names
from . import _optimizers
from . import _saving
from . import _schedules
from . import _step
from . import _validate
from ._common import Decoupled
from .state._access import Access
from .state._access import StateError

keras, _Optimizer = _detect.host("legacy")  # ImportError naming the releases if absent
from . import _tf  # noqa: E402  (the host above imported TensorFlow)
from . import _tf_fast  # noqa: E402  (the host above imported TensorFlow)

tf = _tf.tf

__all__ = ["AdamW", "SGDW"]

_Schedule = keras.optimizers.schedules.LearningRateSchedule

# Feature probe (no version test): `global_clipnorm` arrived in OptimizerV2 in TF 2.4.
_HAS_GLOBAL_CLIPNORM = hasattr(_Optimizer, "global_clipnorm")


def _plain(value):
    """A hyperparameter as a plain Python value (a variable's value is a NumPy scalar)."""
    if tf.is_tensor(value):
        value = keras.backend.get_value(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    return value


class _AfterStep(object):
    """The host's step (every variable, then ``iterations``), then what the optimizer advances
    itself (``_after_step``: optcompat.keras_adamw's ``t_cur``, ``eta_t``), after it in graph
    mode too; for optcompat's classes and ``decoupled()``'s."""

    def _distributed_apply(self, distribution, grads_and_vars, *args, **kwargs):
        # (name, apply_state) in TF 2.2-2.10, (apply_state, name) later: passed on as given
        op = super(_AfterStep, self)._distributed_apply(
            distribution, grads_and_vars, *args, **kwargs
        )
        with tf.control_dependencies([op]):
            after = self._after_step()
        return op if not after else tf.group(op, *after)


class _HyperStore(object):
    """``weight_decay`` as OptimizerV2 keeps a hyperparameter (:mod:`._weight_decay`'s
    contract): ``_set_hyper`` (checked in ``_Legacy._set_hyper``, where ``opt.weight_decay = x``
    lands too; a variable once built, so a change reaches traced steps), ``_get_hyper``; a
    schedule at the step, a callable as the host calls it.  None (SGDW's default: no decay) is a
    hyperparameter at 0, given as None."""

    def __init__(self, optimizer, value):
        self.optimizer = optimizer
        optimizer._set_hyper("weight_decay", 0.0 if value is None else value)
        if value is None:
            _saving.remember(optimizer, "weight_decay", None)

    @staticmethod
    def checked(optimizer, value):
        """``value`` for ``_set_hyper("weight_decay", value)``, checked as the argument is
        (a refused value changes nothing); the float last given kept (:meth:`may_be_zero`)."""
        value = _schedules.adopt(value, HOST.schedules)
        _checks.own_keras(optimizer, "weight_decay", value)
        plain = not (tf.is_tensor(value) or callable(value))
        if plain:
            value = _validate.at_least("weight_decay", value)
        optimizer._weight_decay = value if plain else None
        return value

    def value(self):
        return self.optimizer._get_hyper("weight_decay")

    def set(self, value):
        self.optimizer._set_hyper("weight_decay", value)

    def rate(self, dtype, iterations):
        optimizer = self.optimizer
        value = optimizer._hyper["weight_decay"]
        # (_get_hyper calls a plain callable, not a schedule)
        if isinstance(value, _Schedule):
            return tf.cast(
                _validate.traced_rate("weight_decay", value(iterations)), dtype
            )
        # as _get_hyper calls it, its value checked where it is a number
        if callable(value):
            return tf.identity(
                tf.cast(_validate.traced_rate("weight_decay", value()), dtype)
            )
        return optimizer._host.hyper_value(optimizer, "weight_decay", dtype)

    def function(self):
        value = self.optimizer._hyper.get("weight_decay")
        return value if callable(value) else None

    def may_be_zero(self):
        return getattr(self.optimizer, "_weight_decay", None) == 0.0


class _Hyperparameters(_host.Host):
    """OptimizerV2's hyperparameters for the core: kept with ``_set_hyper`` (variables once the
    optimizer is built, so a value set later reaches steps already traced), read with
    ``_get_hyper`` (a schedule or callable called at each step)."""

    def keep(self, optimizer, key, value):
        if key in optimizer.HYPERS:
            optimizer._set_hyper(key, value)
        else:
            setattr(optimizer, key, value)

    def hyper_value(self, optimizer, name, dtype):
        return tf.identity(optimizer._get_hyper(name, dtype))

    def lr0_value(self, optimizer, dtype):
        if optimizer._decay.lr0 is not None:
            return tf.cast(optimizer._decay.lr0, dtype)
        if isinstance(optimizer._hyper["learning_rate"], _Schedule):
            return tf.cast(optimizer._hyper["learning_rate"](0), dtype)
        # a float or callable rate: eta_t = 1 (lr_t / lr_t would be 0/0 at 0)
        return None

    def config_value(self, optimizer, name):
        if name in optimizer._hyper:
            config = _schedules.registered(
                optimizer._hyper[name], optimizer._serialize_hyperparameter(name)
            )
            return _saving.as_given(optimizer, name, _plain(config))
        return getattr(optimizer, name)

    def initial_rate(self, learning_rate):
        """A schedule's value at step 0 (else None: eta = 1)."""
        if not isinstance(learning_rate, _Schedule):
            return None
        with tf.init_scope():  # eager, even when built inside a tf.function
            value = learning_rate(0)
        try:
            return float(
                keras.backend.get_value(value) if tf.is_tensor(value) else value
            )
        except Exception:  # a TF1 graph: evaluated in the graph at each step instead
            return None

    def learning_rate_of(self, optimizer):
        return optimizer._hyper["learning_rate"]

    def read_hyper(self, value):
        # whatever _set_hyper takes
        return _tf.read_hyper(value, callables=True, OTHER=_validate.OTHER)


class _Host(_Hyperparameters):
    """OptimizerV2 for the core (:class:`._host.Host`)."""

    family = "legacy"
    # Keras 2's and Keras 3's (a file another family wrote): no EMA, no accumulation, no scaling
    foreign_arguments = {
        "use_ema": lambda value, config: not value,
        "ema_momentum": lambda value, config: not config.get("use_ema"),
        "ema_overwrite_frequency": lambda value, config: not config.get("use_ema"),
        "jit_compile": lambda value, config: True,
        "is_legacy_optimizer": lambda value, config: True,
        "loss_scale_factor": lambda value, config: value is None,
        "gradient_accumulation_steps": lambda value, config: value is None,
    }

    xp = _tf.xp
    kind = "an OptimizerV2 (legacy) optimizer"
    decay_store = _HyperStore

    def take_aliases(self, learning_rate, kwargs):
        if "lr" in kwargs:  # the host's deprecated alias
            warnings.warn(
                "The `lr` argument is deprecated, use `learning_rate` instead.",
                DeprecationWarning,
                stacklevel=4,
            )
            learning_rate = kwargs.pop("lr")
        return learning_rate

    def check_arguments(self, checked):
        if checked["global_clipnorm"] is not None and not _HAS_GLOBAL_CLIPNORM:
            raise ValueError(
                "`global_clipnorm` needs TensorFlow >= 2.4 (this OptimizerV2 has no global "
                "clipping); received global_clipnorm=%r. Use `clipnorm` or `clipvalue`."
                % (checked["global_clipnorm"],)
            )

    def variable_name(self, variable):
        return variable.name

    def display_name(self, variable):
        """``dense/kernel`` for ``dense/kernel:0``: the name users wrote."""
        name = variable.name
        return name[:-2] if name.endswith(":0") else name

    def values_of(self, optimizer, variable, slots):
        return variable.value(), tuple(None if s is None else s.value() for s in slots)

    def scalar_variable(self, optimizer, name, value):
        # a Keras backend variable (initialized by Keras's session in TF1 graph mode), tracked by
        # attribute (checkpoints), not in `weights` (the file layout stays the host's)
        with tf.init_scope():
            return keras.backend.variable(value, dtype="float32", name=name)

    def concrete(self, variable):
        """``variable``'s value as a float (TF1 graph mode: through Keras's session); None
        inside a tf.function."""
        try:
            return float(keras.backend.get_value(variable))
        except Exception:  # symbolic
            return None

    def eager(self):
        return tf.executing_eagerly()

    def assign(self, optimizer, variable, value):
        return variable.assign(
            value, use_locking=optimizer._use_locking, read_value=False
        )

    def group(self, writes):
        return tf.group(*writes)

    def identity(self, optimizer, variable):
        """``variable.ref()`` (TFA's key), a replica's component found as its container."""
        container = getattr(variable, "_distributed_container", None)
        container = container() if callable(container) else None
        variable = container if container is not None else variable
        # TF < 2.2
        return (
            variable.ref() if hasattr(variable, "ref") else variable.experimental_ref()
        )

    def allows_decay(self, optimizer, variable):
        # opt.exclude_from_weight_decay(var_list=...) of optcompat's classes
        return variable.name not in getattr(optimizer, "_exclude_exact", ())


HOST = _Host(keras, _Optimizer)
# optcompat.schedules' classes for this tf.keras / tf_keras (shared with the keras2 family)
SCHEDULES = HOST.schedules


def _check_rates(optimizer):
    """A schedule's or callable's rates before a step: at the step counter in an eager step,
    a plain callable's Python number (read outside the graph) before a step is traced."""
    lr = optimizer._hyper.get("learning_rate")
    # (reading `iterations` first would create it here, outside the optimizer's scope); the
    # step as the host's _decayed_lr gives it to a schedule: a float tensor (a variable has no
    # __array__ in TF 1.15-2.1, for a schedule that reads it with NumPy)
    if callable(lr) and HOST.eager():
        _checks.rate(optimizer, lr, tf.cast(optimizer.iterations, tf.float32))
    elif callable(lr):
        with tf.init_scope():
            _checks.rate(optimizer, lr, None)
    function = optimizer._decay_store.function()
    if function is not None and HOST.eager():
        step = tf.cast(optimizer.iterations, tf.float32)
        _checks.rate(optimizer, function, step, "weight_decay")


class _Legacy(_AfterStep, _tf.FusedKernels, Decoupled, _Optimizer):
    """The OptimizerV2 optimizer methods of :class:`._common.Decoupled`."""

    _host = HOST
    # apply_gradients accepts `experimental_aggregate_gradients` (passed on to the base
    # class), so Keras may aggregate (and clip) gradients before calling it.
    _HAS_AGGREGATE_GRAD = True

    def _init_host(self, checked, name, kwargs):
        clipping = _validate.clipping(checked).items()
        kwargs.update((key, value) for key, value in clipping if value is not None)
        _Optimizer.__init__(self, name, **kwargs)
        self._set_hyper("learning_rate", checked["learning_rate"])
        self._set_hyper("decay", self._initial_decay)
        self._exclude_exact = set()

    # -- hyperparameters -------------------------------------------------------------------
    def _set_hyper(self, name, value):
        # `opt.weight_decay = x` (between steps: a callback) lands here: checked like the argument
        if name == "weight_decay":
            value = _HyperStore.checked(self, value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # get_config gives it back, not its float32 rounding
            _saving.remember(self, name, float(value))
        super()._set_hyper(name, value)

    # -- decay mask --------------------------------------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude variables (``var_list``) or name patterns (``var_names``, regular
        expressions searched in variable names) from weight decay, as Keras 3 does."""
        for v in var_list or ():
            self._exclude_exact.add(v.name)
        self._decay.exclude_more(_validate.name_patterns("var_names", var_names))

    # -- gradients are checked before the host changes anything ------------------------
    def apply_gradients(self, grads_and_vars, name=None, **kwargs):
        grads_and_vars = list(grads_and_vars)
        _checks.gradients(
            self, grads_and_vars, _tf.is_float, _tf.dtype_name, _tf.shapes
        )
        _check_rates(self)
        return super().apply_gradients(grads_and_vars, name=name, **kwargs)

    # -- slots and the step ------------------------------------------------------------
    def _create_slots(self, var_list):
        # One loop per slot, as the host's Adam (the order checkpoints list them in).
        self._check_names(var_list)
        for key in self.SLOTS:
            if self._has_slot(key):
                for var in var_list:
                    self.add_slot(var, key)

    def _slot_values(self, variable):
        return tuple(
            self.get_slot(variable, key) if self._has_slot(key) else None
            for key in self.SLOTS
        )

    def _prepare_local(self, var_device, var_dtype, apply_state):
        # lr_t (schedule, decay)
        super()._prepare_local(var_device, var_dtype, apply_state)
        coefficients = apply_state[(var_device, var_dtype)]
        c = self._step_coefficients(
            self._host.xp, var_dtype, coefficients["lr_t"], self.iterations
        )
        c["decay"] = tf.identity(c["decay"])
        # for the fused kernel (:mod:`._tf_fast`), once per step and dtype
        coefficients.update(_tf_fast.kernel_coefficients(tf, self.kind, c, var_dtype))

    def _resource_apply_dense(self, grad, var, apply_state=None):
        var_device, var_dtype = var.device, var.dtype.base_dtype
        c = (apply_state or {}).get(
            (var_device, var_dtype)
        ) or self._fallback_apply_state(var_device, var_dtype)
        return _step.apply_one(
            self, grad, var, lambda: c["lr_t"], self.iterations, shared=c
        )

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        # Dense semantics (see the module docstring): the rows' sum as a dense gradient.
        dense = tf.convert_to_tensor(
            tf.IndexedSlices(grad, indices, tf.shape(var, out_type=indices.dtype))
        )
        return self._resource_apply_dense(dense, var, apply_state)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # the base class's, the schedules made first (optcompat's found by class name too)
        return super().from_config(
            _saving.deserialize_rates(
                cls, _saving.portable(cls, config), custom_objects
            ),
            custom_objects=custom_objects,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {h: HOST.config_value(self, h) for h in ("learning_rate", "weight_decay")}
        )
        config.update(_saving.config(self), decay=self._initial_decay)
        return config


def _register(cls):
    # "optcompat.legacy>AdamW": TF 2.9-2.15 and tf_keras have both this family and keras2
    # in one registry, and a registered name can be taken once.
    # The common names where this family is the registry's (:mod:`._names`).
    cls = _names.registrar(keras, "optcompat.legacy")(cls)
    return _names.register(keras, "legacy", cls)


AdamW, SGDW = (
    _optimizers.make(
        spec,
        _Legacy,
        "OptimizerV2 (TF 1.15-2.15, tf_keras.optimizers.legacy)",
        __name__,
        _register,
    )
    for spec in _optimizers.SPECS
)


# -- optcompat.decoupled(OptimizerClass) ---------------------------------------------------
def decoupled(base):
    """`optcompat.decoupled(base)` for an OptimizerV2 class
    (`tf.keras.optimizers.legacy.Nadam` in TF 2.11-2.15, ...): its class `Decoupled<Base>`, or
    a `TypeError` for a class of another family."""
    return _extension.decoupled(base, _Extension, _register)


class _Extension(_AfterStep, _extension.Extension):
    """OptimizerV2's hooks of :class:`._extension.Extension` (as TensorFlow Addons' extension):
    ``weight_decay`` a hyperparameter, the decay before the base's ``_resource_apply_*``.  A
    sparse gradient's variable decays whole, as with optcompat's AdamW (every weight,
    every step)."""

    _host = HOST

    def _store_weight_decay(self, value):
        self._set_hyper("weight_decay", value)

    def _given_weight_decay(self):
        return self._hyper["weight_decay"]

    def _weight_decay_at(self, iterations, dtype=tf.float32):
        value = self._hyper["weight_decay"]
        # (_get_hyper calls a plain callable and casts; not a schedule)
        if isinstance(value, _Schedule):
            return tf.cast(
                _validate.traced_rate("weight_decay", value(iterations)), dtype
            )
        # as _get_hyper calls it, its value checked where it is a number
        if callable(value):
            return tf.cast(_validate.traced_rate("weight_decay", value()), dtype)
        return self._get_hyper("weight_decay", dtype)

    def apply_gradients(self, grads_and_vars, name=None, **kwargs):
        if callable(self._hyper["weight_decay"]) and tf.executing_eagerly():
            self._check_weight_decay_at(self.iterations.numpy())
        return super().apply_gradients(grads_and_vars, name=name, **kwargs)

    def _set_hyper(self, name, value):
        # (opt.weight_decay = x lands here)
        if name == "weight_decay" and isinstance(value, float):
            # get_config gives it, not a float32 rounding
            self.__dict__["_weight_decay_given"] = value
        super()._set_hyper(name, value)

    def _decay_then(self, var, apply):
        if not self._decays(var):
            return apply()
        dtype = var.dtype.base_dtype
        new = self._decayed_value(
            _tf.xp,
            var,
            self._decayed_lr(dtype),
            self._weight_decay_at(self.iterations, dtype),
        )
        with tf.control_dependencies(
            [var.assign(new, use_locking=self._use_locking, read_value=False)]
        ):
            return apply()

    # the learning-rate coefficients OptimizerV2's optimizers keep per step (SGD, Nadam: lr_t,
    # neg_lr_t; Adam: lr): scaled together where a step's rate is scaled (_step_scale)
    _RATE_KEYS = ("lr_t", "neg_lr_t", "lr")

    def _scaled(self, var, apply_state):
        scale = self._step_scale(var)
        key = (var.device, var.dtype.base_dtype)
        if scale is None or not apply_state or key not in apply_state:
            return apply_state
        coefficients = dict(apply_state[key])
        for name in self._RATE_KEYS:
            if name in coefficients:
                coefficients[name] = coefficients[name] * tf.cast(
                    scale, coefficients[name].dtype
                )
        scaled = dict(apply_state)
        scaled[key] = coefficients
        return scaled

    def _resource_apply_dense(self, grad, var, apply_state=None):
        return self._decay_then(
            var,
            lambda: super(_Extension, self)._resource_apply_dense(
                grad, var, apply_state=self._scaled(var, apply_state)
            ),
        )

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        return self._decay_then(
            var,
            lambda: super(_Extension, self)._resource_apply_sparse(
                grad, var, indices, apply_state=self._scaled(var, apply_state)
            ),
        )

    def get_config(self):
        config = self._extension_config(super().get_config())
        stored, given = (
            _plain(self._serialize_hyperparameter("weight_decay")),
            self.__dict__.get("_weight_decay_given"),
        )
        config["weight_decay"] = (
            given
            if given is not None and stored in (given, _saving.float32(given))
            else stored
        )
        return config


# -- optimizer state (optcompat.state): the host's own Adam / SGD, TFA's and keras-adamw's --
class _StateAccess(Access):
    family = "legacy"

    # through Keras's backend: eager, and in TF 1.x graph mode through Keras's session
    def numpy(self, value):
        return np.asarray(
            keras.backend.get_value(value) if tf.is_tensor(value) else value
        )

    def assign(self, variable, value):
        keras.backend.set_value(variable, value)

    def set_iterations(self, optimizer, value):
        keras.backend.set_value(optimizer.iterations, value)

    def slots(self, optimizer, variables, keys):
        if any(k not in optimizer.get_slot_names() for k in keys):
            return None  # slots are made at the first step (or by build)
        out = []
        for variable in variables:
            try:
                out.append({k: optimizer.get_slot(variable, k) for k in keys})
            except KeyError:
                raise StateError(
                    "Variable %s has no slots in %s (the optimizer was used with other variables)."
                    % (variable.name, type(optimizer).__name__)
                )
        return out

    def build(self, optimizer, variables):
        create = getattr(optimizer, "_create_all_weights", None)
        if create is not None:
            create(variables)
            return
        with tf.init_scope():  # the releases before _create_all_weights: what it does
            _ = optimizer.iterations
            optimizer._create_hypers()
            optimizer._create_slots(variables)


STATE = _StateAccess()
