"""AdamW, SGDW and `decoupled` for the Keras 2 optimizers (TF 2.9-2.15, `tf_keras`).

`optcompat.keras2.AdamW` and `SGDW` are `optcompat.AdamW` / `SGDW` (the signatures, equations
and examples above) as subclasses of `tf.keras.optimizers.experimental.Optimizer` (TF
2.9-2.10), `tf.keras.optimizers.Optimizer` (TF 2.11-2.15) or `tf_keras.optimizers.Optimizer`;
where that is your default Keras (TF 2.11-2.15), `optcompat.AdamW` is this one.  Importing this
module where none is installed raises `ImportError` naming the releases that have it.  On this
family `learning_rate` is a float or a schedule (its base class cannot call a plain function
each step); `jit_compile` is the host's.

Example:
    ```python
    # keras: this family's, tf.keras (TF 2.9-2.15) or tf_keras
    from optcompat.keras2 import AdamW

    # a Keras 2 schedule, as this family's own optimizers take one
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, decay_rate=0.9)
    optimizer = AdamW(learning_rate=schedule, weight_decay=4e-3)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, epochs=2, verbose=0)
    assert int(optimizer.iterations) == 2  # 16 samples: one batch an epoch
    ```
"""

# Developer notes (the module docstring before the API reference rendered it for users):
# AdamW and SGDW for the Keras 2 optimizers (``build`` / ``update_step``).
#
# Hosts (resolved in :mod:`._detect`): ``tf.keras.optimizers.experimental.Optimizer`` in
# TF 2.9-2.10, ``tf.keras.optimizers.Optimizer`` in TF 2.11-2.15, and
# ``tf_keras.optimizers.Optimizer``.  The host's own weight decay is never used: TF 2.9's
# experimental AdamW decays wrongly (``var -= var*(1-lr*wd)``), 2.10 changed it twice, and
# 2.11 moved it into the base class -- optcompat's numbers come from the one rule on every
# release.  Private host APIs (``_index_dict``, ``_var_key``, ``_build_learning_rate``,
# ``_serialize_hyperparameter``, ``_use_weight_decay``) are touched only here.
#
# This module holds the family's hooks only (:mod:`._common` lists them); the optimizers are
# declared in :mod:`._optimizers`.  Sparse gradients (``tf.IndexedSlices``, e.g. from
# ``Embedding``) are densified before the rule (:func:`._tf.dense`).  ``jit_compile=True``
# (the host's XLA path) runs the same code.
from . import _checks
from . import _detect
from . import _extension
from . import _host
from . import _names
from . import _optimizers
from . import _saving
from . import _step
from . import _validate
from ._common import Decoupled
from .state._access import Access

keras, _Optimizer = _detect.host("keras2")  # ImportError naming the releases if absent
from . import _tf  # noqa: E402  (TensorFlow: every keras2 host runs on it)
from . import _tf_fast  # noqa: E402  (TensorFlow: every keras2 host runs on it)

tf = _tf.tf

__all__ = ["AdamW", "SGDW"]


class _Host(_host.Host):
    """Keras 2 for the core (:class:`._host.Host`)."""

    family = "keras2"
    # Keras 3's and OptimizerV2's (a file another family wrote)
    foreign_arguments = {
        "loss_scale_factor": lambda value, config: value is None,
        "gradient_accumulation_steps": lambda value, config: value is None,
        "decay": lambda value, config: not value,
    }

    xp = _tf.xp
    kind = "a Keras 2 optimizer"
    callable_rates = False  # _build_learning_rate takes a float or a schedule

    def initial_rate(self, learning_rate):
        return (
            float(learning_rate(0))
            if isinstance(learning_rate, self.schedule_module.LearningRateSchedule)
            else None
        )

    def read_hyper(self, value):
        return _tf.read_hyper(value, OTHER=_validate.OTHER)

    def scalar_variable(self, optimizer, name, value):
        # as _build_learning_rate makes the learning rate's: tracked by attribute (checkpoints),
        # not in `variables` (the .keras / .h5 layout is the host's; get_config has the value)
        with tf.init_scope():
            return tf.Variable(
                value, name=name, dtype=keras.backend.floatx(), trainable=False
            )

    def concrete(self, variable):
        """``variable``'s value as a float where it is concrete now; None inside a tf.function."""
        return float(variable.numpy()) if tf.executing_eagerly() else None

    def eager(self):
        return tf.executing_eagerly()

    def identity(self, optimizer, variable):
        # Keras 2's own key (a replica's component: its container's)
        return optimizer._var_key(variable)

    def allows_decay(self, optimizer, variable):
        # TF 2.11+ also offers opt.exclude_from_weight_decay(var_list=..., var_names=...).
        host = getattr(_Optimizer, "_use_weight_decay", None)
        return host is None or host(optimizer, variable)


HOST = _Host(keras, _Optimizer)
# optcompat.schedules' classes for this tf.keras / tf_keras (shared with the legacy family)
SCHEDULES = HOST.schedules


class _Keras2(_tf.FusedKernels, Decoupled, _Optimizer):
    """The Keras 2 optimizer methods of :class:`._common.Decoupled`."""

    _host = HOST

    def _init_host(self, checked, name, kwargs):
        kwargs.pop("weight_decay", None)
        # weight_decay is not handed to the base: 2.9/2.10 have no such argument, and 2.11+
        # would apply the host's decay on top of the rule's.
        _Optimizer.__init__(
            self,
            name=name,
            **_validate.clipping(checked),
            **kwargs,
        )
        self._learning_rate = self._build_learning_rate(checked["learning_rate"])

    def _apply_weight_decay(self, variables):
        return None  # TF 2.11+ base-class decay: the rule applies it instead

    # the host's own slot names (Adam: m, v, vhat; SGD: m), and its SGD's momentum slot
    # for every variable even with momentum 0 (unused): files list them by position
    _SLOT_NAMES = {"m": "m", "v": "v", "vhat": "vhat", "momentum": "m"}
    _UNUSED_SLOTS = ("momentum",)

    def build(self, var_list):
        if not getattr(self, "_built", False):
            self._check_names(var_list)
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._build_slots(
            var_list,
            lambda v, key: self.add_variable_from_reference(
                model_variable=v, variable_name=self._SLOT_NAMES[key]
            ),
        )

    def _slot_values(self, variable):
        return self._slots_at(self._index_dict[self._var_key(variable)])

    def update_step(self, gradient, variable):
        return _step.apply_one(
            self, gradient, variable, lambda: self.learning_rate, self.iterations
        )

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        _checks.gradients(
            self, grads_and_vars, _tf.is_float, _tf.dtype_name, _tf.shapes
        )
        # where the step is traced, read outside its graph: the values at the counter the
        # traced step starts from (a schedule's too), checked before it exists
        with tf.init_scope():
            _checks.rate(self, self._learning_rate, self.iterations)
            _checks.rate(
                self, self._decay_store.function(), self.iterations, "weight_decay"
            )
        with _tf_fast.step_scope(self):
            result = super().apply_gradients(grads_and_vars, *args, **kwargs)
        self._after_step()  # (ordered after the step: TensorFlow orders a function's stateful ops)
        return result

    def get_config(self):
        config = super().get_config()
        lr = self._serialize_hyperparameter(self._learning_rate)
        config.update(
            _saving.config(self),
            name=self.name,
            weight_decay=_saving.serialize_rate(self, self.weight_decay),
            learning_rate=lr
            if isinstance(lr, dict)
            else _saving.as_given(self, "learning_rate", float(lr)),
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = _saving.deserialize_rates(
            cls, _saving.portable(cls, config), custom_objects
        )
        config.pop("is_legacy_optimizer", None)
        return cls(**config)


# A registry name per family (tf.keras also holds the legacy family's classes), and the
# common names where this family is the registry's (:mod:`._names`)
def _register(cls):
    cls = keras.utils.register_keras_serializable(package="optcompat.keras2")(cls)
    return _names.register(keras, "keras2", cls)


AdamW, SGDW = (
    _optimizers.make(
        spec, _Keras2, "Keras 2 (TF 2.9-2.15, tf_keras)", __name__, _register
    )
    for spec in _optimizers.SPECS
)


# -- optcompat.decoupled(OptimizerClass) ---------------------------------------------------
def decoupled(base):
    """`optcompat.decoupled(base)` for a Keras 2 optimizer class (`tf.keras.optimizers.Nadam` in TF
    2.11-2.15, ...): its class `Decoupled<Base>`, or a `TypeError` for a class of another family."""
    return _extension.decoupled(base, _Extension, _register)


class _Extension(_extension.Extension):
    """Keras 2's hooks of :class:`._extension.Extension`: the decay at the start of each
    variable's ``update_step`` (TF 2.9-2.10 have no ``_apply_weight_decay``; 2.11+'s is off)."""

    _host = HOST

    def _store_weight_decay(self, value):
        self.weight_decay = value

    def _given_weight_decay(self):
        return self.weight_decay

    def _apply_weight_decay(self, variables):
        return None  # TF 2.11+'s own decay: update_step applies the convention's

    @property
    def learning_rate(self):
        # the base's update_step reads its rate here: scaled for the variable being stepped
        # (_step_scale, set by update_step while the base's step is traced or run)
        rate = _Optimizer.learning_rate.fget(self)
        scale = self.__dict__.get("_optcompat_step_scale")
        return rate if scale is None else rate * tf.cast(scale, rate.dtype)

    @learning_rate.setter
    def learning_rate(self, value):
        _Optimizer.learning_rate.fset(self, value)

    def update_step(self, gradient, variable):
        if not self._decay_off() and self._decays(variable):
            variable.assign(
                self._decayed_value(
                    _tf.xp,
                    variable,
                    self.learning_rate,
                    self._weight_decay_at(self.iterations),
                )
            )
        self.__dict__["_optcompat_step_scale"] = self._step_scale(variable)
        try:
            return super().update_step(gradient, variable)
        finally:
            self.__dict__["_optcompat_step_scale"] = None

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        if tf.executing_eagerly():
            self._check_weight_decay_at(self.iterations.numpy())
        result = super().apply_gradients(grads_and_vars, *args, **kwargs)
        self._after_step()
        return result

    def get_config(self):
        return self._extension_config(super().get_config())


# -- optimizer state (optcompat.state), the host's own Adam / AdamW / SGD too --------------
class _StateAccess(Access):
    family = "keras2"

    def index_of(self, optimizer, variable):
        return optimizer._index_dict[optimizer._var_key(variable)]

    def build(self, optimizer, variables):
        with tf.init_scope():  # as apply_gradients builds
            optimizer.build(variables)


STATE = _StateAccess()
