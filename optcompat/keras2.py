"""AdamW and SGDW for the Keras 2 optimizers (``build`` / ``update_step``).

Hosts (resolved in :mod:`._detect`): ``tf.keras.optimizers.experimental.Optimizer`` in
TF 2.9-2.10, ``tf.keras.optimizers.Optimizer`` in TF 2.11-2.15, and
``tf_keras.optimizers.Optimizer``.  The host's own weight decay is never used: TF 2.9's
experimental AdamW decays wrongly (``var -= var*(1-lr*wd)``), 2.10 changed it twice, and
2.11 moved it into the base class -- optcompat's numbers come from the one rule on every
release.  Private host APIs (``_index_dict``, ``_var_key``, ``_build_learning_rate``,
``_serialize_hyperparameter``, ``_use_weight_decay``) are touched only here.

Sparse gradients (``tf.IndexedSlices``, e.g. from ``Embedding``) are densified before the
rule, which gives exactly the dense result -- as the host's own Adam does, every row's
moments decay each step.  ``jit_compile=True`` (the host's XLA path) runs the same code.
"""
from . import _detect, _tf_fast, _validate
from ._common import ADAMW_DOC, SGDW_DOC, Decoupled, tf_namespace
from ._conventions import DEFAULT

keras, _Optimizer = _detect.host("keras2")  # ImportError naming the releases if absent
import tensorflow as tf  # noqa: E402  (every keras2 host runs on TensorFlow)

__all__ = ["AdamW", "SGDW"]

_schedules = keras.optimizers.schedules
# A registry name per family: tf.keras also holds the legacy family's classes.
_register = keras.utils.register_keras_serializable(package="optcompat.keras2")


def _is_schedule(value):
    return isinstance(value, _schedules.LearningRateSchedule)


def _is_float(dtype):
    return tf.as_dtype(dtype).is_floating


def _dtype_name(dtype):
    return tf.as_dtype(dtype).name


class _Keras2(Decoupled, _Optimizer):
    """The Keras 2 hooks of :class:`._common.Decoupled`."""

    xp = tf_namespace(tf)
    # "auto" / "fused": through TensorFlow's fused training kernels (:mod:`._tf_fast`);
    # None: the rule op by op.
    fast_path = "auto"

    def _fast_modes(self):
        return ("fused",)

    def __init__(self, learning_rate, weight_decay, convention, exclude_from_weight_decay,
                 clipnorm, clipvalue, global_clipnorm, name, **kwargs):
        checked = _validate.common(learning_rate, weight_decay, convention, clipnorm, clipvalue,
                                   global_clipnorm, exclude_from_weight_decay, _is_schedule,
                                   allow_callable=False)
        lr = checked["learning_rate"]
        lr0 = float(lr(0)) if _is_schedule(lr) else None
        _validate.initial_learning_rate(lr0, checked["convention"])
        kwargs.pop("weight_decay", None)
        # weight_decay is not handed to the base: 2.9/2.10 have no such argument, and 2.11+
        # would apply the host's decay on top of the rule's.
        super().__init__(name=name, clipnorm=checked["clipnorm"], clipvalue=checked["clipvalue"],
                         global_clipnorm=checked["global_clipnorm"], **kwargs)
        self._learning_rate = self._build_learning_rate(lr)
        self._init_decoupled(checked, lr0)

    def _apply_weight_decay(self, variables):
        return None  # TF 2.11+ base-class decay: the rule applies it instead

    def _scalar_variable(self, name, value):
        # as _build_learning_rate makes the learning rate's: tracked by attribute (checkpoints),
        # not in `variables` (the .keras / .h5 layout is the host's; get_config has the value)
        with tf.init_scope():
            return tf.Variable(value, name=name, dtype=keras.backend.floatx(), trainable=False)

    def _concrete(self, variable):
        """``variable``'s value as a float where it is concrete now; None inside a tf.function."""
        return float(variable.numpy()) if tf.executing_eagerly() else None

    def _host_allows_decay(self, variable):
        # TF 2.11+ also offers opt.exclude_from_weight_decay(var_list=..., var_names=...).
        host = getattr(_Optimizer, "_use_weight_decay", None)
        return host is None or host(self, variable)

    def _slot(self, slots, variable):
        return None if slots is None else slots[self._index_dict[self._var_key(variable)]]

    def _assign(self, variable, value):
        variable.assign(value)

    def _slots_for(self, variables, name):
        return [self.add_variable_from_reference(model_variable=v, variable_name=name)
                for v in variables]

    def _eager(self):
        return tf.executing_eagerly()

    def _dense(self, gradient):
        # Dense semantics for IndexedSlices (see the module docstring).
        return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        self._check_gradients(grads_and_vars, _is_float, _dtype_name)
        self._check_learning_rate(self._learning_rate, self.iterations)
        with _tf_fast.step_scope(self):
            return super().apply_gradients(grads_and_vars, *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        lr = self._serialize_hyperparameter(self._learning_rate)
        config.update(self._decoupled_config(), name=self.name, weight_decay=self.weight_decay,
                      learning_rate=lr if isinstance(lr, dict) else float(lr))
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config.pop("is_legacy_optimizer", None)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"],
                                                             custom_objects=custom_objects)
        return cls(**config)


@_register
class AdamW(_Keras2):
    __doc__ = ADAMW_DOC % ("Keras 2 (TF 2.9-2.15, tf_keras)", "")

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, convention=DEFAULT, exclude_from_weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="AdamW", **kwargs):
        checked = _validate.adamw(beta_1, beta_2, epsilon, amsgrad)
        super().__init__(learning_rate, weight_decay, convention, exclude_from_weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        self._keep(checked)

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._momentums = self._slots_for(var_list, "m")
        self._velocities = self._slots_for(var_list, "v")
        self._velocity_hats = self._slots_for(var_list, "vhat") if self.amsgrad else None

    def update_step(self, gradient, variable):
        if _tf_fast.usable(self, tf, variable):
            return _tf_fast.adamw(self, tf, gradient, variable, lambda: self.learning_rate, self.iterations)
        self._adamw_step(gradient, variable, self.learning_rate, self.iterations)


@_register
class SGDW(_Keras2):
    __doc__ = SGDW_DOC % ("Keras 2 (TF 2.9-2.15, tf_keras)", "")

    def __init__(self, learning_rate=0.01, weight_decay=0.0, momentum=0.0, nesterov=False,
                 convention=DEFAULT, exclude_from_weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name="SGDW", **kwargs):
        checked = _validate.sgdw(momentum, nesterov)
        super().__init__(learning_rate, weight_decay, convention, exclude_from_weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        self._keep(checked)

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._momentums = self._slots_for(var_list, "momentum") if self.momentum else None

    def update_step(self, gradient, variable):
        if _tf_fast.usable(self, tf, variable):
            return _tf_fast.sgdw(self, tf, gradient, variable, lambda: self.learning_rate)
        self._sgdw_step(gradient, variable, self.learning_rate)
