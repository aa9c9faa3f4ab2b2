"""AdamW and SGDW for Keras 3 (``keras.optimizers.Optimizer``; tensorflow, jax, torch backends).

A thin adapter: it validates (:mod:`._validate`), creates the slots, and maps the one
rule (:mod:`._rule`, over ``keras.ops``) onto ``update_step``.  The host base class keeps
everything else it does: schedules, clipping, EMA, gradient accumulation, loss scaling,
``tf.distribute`` hooks, stateless JAX training, saving.
"""
import re

from . import _detect, _rule, _validate
from ._conventions import DEFAULT

keras, _Optimizer = _detect.host("keras3")  # ImportError naming the releases if absent
ops = keras.ops

__all__ = ["AdamW", "SGDW"]

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def _is_schedule(value):
    return isinstance(value, _Schedule)


def _name(variable):
    return getattr(variable, "path", None) or variable.name


class _Decoupled(_Optimizer):
    """What AdamW and SGDW share: validation, the decay mask, ``lr_0``, config."""

    def __init__(self, learning_rate, weight_decay, convention, exclude_from_weight_decay,
                 clipnorm, clipvalue, global_clipnorm, name, **kwargs):
        checked = _validate.common(learning_rate, weight_decay, convention, clipnorm, clipvalue,
                                   global_clipnorm, exclude_from_weight_decay, _is_schedule)
        lr0 = self._initial_learning_rate(checked["learning_rate"], checked["convention"])
        super().__init__(
            learning_rate=checked["learning_rate"],
            # The base class's own decay is switched off (_apply_weight_decay); the rule
            # applies it.  Passing the value keeps `weight_decay` in the host's config.
            weight_decay=checked["weight_decay"],
            clipnorm=checked["clipnorm"],
            clipvalue=checked["clipvalue"],
            global_clipnorm=checked["global_clipnorm"],
            name=name,
            **kwargs
        )
        self.convention = checked["convention"]
        self._exclude_names = checked["exclude_from_weight_decay"]
        self._exclude_re = re.compile("|".join(self._exclude_names)) if self._exclude_names else None
        self._lr0 = lr0

    @staticmethod
    def _initial_learning_rate(lr, convention):
        """``lr_0`` of the paper convention: a schedule's value at step 0 (else eta = 1)."""
        if not _is_schedule(lr):
            return None
        lr0 = float(ops.convert_to_numpy(lr(0)))
        if convention == "paper" and not lr0 > 0:
            raise ValueError(
                "With convention='paper' the decay is scaled by lr_t / lr_0, so the "
                "`learning_rate` schedule must be > 0 at step 0; it is %r." % lr0)
        return lr0

    def _apply_weight_decay(self, variables):
        # Decay is part of the rule (each convention scales it differently).
        return None

    def _decays(self, variable):
        if not self.weight_decay or not self._use_weight_decay(variable):
            return False
        return self._exclude_re is None or self._exclude_re.search(_name(variable)) is None

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if trainable_variables is not None:
            trainable_variables = list(trainable_variables)
        variables = self._trainable_variables if trainable_variables is None else trainable_variables
        # Check every pair before the host updates any variable or slot.
        for g, v in zip(grads, variables):
            if g is None:
                continue
            _validate.float_variable(keras.backend.is_float_dtype(v.dtype), v.dtype, _name(v))
            _validate.gradient(g.shape, keras.backend.standardize_dtype(g.dtype),
                               v.shape, keras.backend.standardize_dtype(v.dtype), _name(v))
        return super().apply(grads, trainable_variables)

    def _coefficients(self, variable, learning_rate):
        """``(lr_t, d_t)`` in the variable's dtype."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        if not self._decays(variable):
            return lr, 0.0
        lr0 = lr if self._lr0 is None else ops.cast(self._lr0, dtype)
        return lr, _rule.decay_coefficient(self.convention, self.weight_decay, lr, lr0)

    def _slot(self, slots, variable):
        return None if slots is None else slots[self._get_variable_index(variable)]

    def _slots_for(self, variables, name):
        return [self.add_variable_from_reference(v, name=name) for v in variables]

    def get_config(self):
        config = super().get_config()
        config.update(convention=self.convention,
                      exclude_from_weight_decay=list(self._exclude_names) or None)
        return config


@keras.saving.register_keras_serializable(package="optcompat")
class AdamW(_Decoupled):
    __doc__ = """Adam with decoupled weight decay (Loshchilov & Hutter), Keras 3.

    ``convention`` picks whose numbers to reproduce: ``"keras"`` (default, equals
    ``keras.optimizers.AdamW``), ``"torch"`` (``torch.optim.AdamW``), ``"tfa"``
    (TensorFlow Addons: decay not scaled by the learning rate), ``"paper"``
    (decay scaled by the schedule multiplier ``lr_t / lr_0``).

    Args:
        learning_rate: float >= 0, a ``keras.optimizers.schedules.LearningRateSchedule``,
            or a callable returning the rate.
        weight_decay: float >= 0, the decoupled decay ``lambda``.
        beta_1, beta_2: in [0, 1).  epsilon: >= 0.  amsgrad: bool.
        convention: one of ``optcompat.CONVENTIONS``.
        exclude_from_weight_decay: list of regular expressions; a variable whose path
            (or name) matches one gets no decay.
        clipnorm, clipvalue, global_clipnorm, name, and the host's other keyword
            arguments (``use_ema``, ``loss_scale_factor``, ...) as in Keras.
    """ + _rule.__doc__

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, convention=DEFAULT, exclude_from_weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="AdamW", **kwargs):
        checked = _validate.adamw(beta_1, beta_2, epsilon, amsgrad)
        super().__init__(learning_rate, weight_decay, convention, exclude_from_weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        self.beta_1 = checked["beta_1"]
        self.beta_2 = checked["beta_2"]
        self.epsilon = checked["epsilon"]
        self.amsgrad = checked["amsgrad"]

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self._slots_for(var_list, "momentum")
        self._velocities = self._slots_for(var_list, "velocity")
        self._velocity_hats = self._slots_for(var_list, "velocity_hat") if self.amsgrad else None

    def update_step(self, gradient, variable, learning_rate):
        lr, decay = self._coefficients(variable, learning_rate)
        step = ops.cast(self.iterations + 1, variable.dtype)
        alpha, eps_hat = _rule.adam_coefficients(ops, self.convention, step, lr,
                                                 self.beta_1, self.beta_2, self.epsilon)
        m, v, vmax = (self._slot(s, variable)
                      for s in (self._momentums, self._velocities, self._velocity_hats))
        new_x, new_m, new_v, new_vmax = _rule.adam_update(
            ops, self.convention, variable, ops.cast(gradient, variable.dtype), m, v, vmax,
            alpha, eps_hat, decay, self.beta_1, self.beta_2)
        self.assign(m, new_m)
        self.assign(v, new_v)
        if vmax is not None:
            self.assign(vmax, new_vmax)
        self.assign(variable, new_x)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      amsgrad=self.amsgrad)
        return config


@keras.saving.register_keras_serializable(package="optcompat")
class SGDW(_Decoupled):
    __doc__ = """SGD (optionally momentum / Nesterov) with decoupled weight decay, Keras 3.

    ``convention``: ``"keras"`` (default; momentum as ``keras.optimizers.SGD``),
    ``"torch"`` (momentum buffer as ``torch.optim.SGD``, decay decoupled), ``"tfa"``
    (decay not scaled by the learning rate), ``"paper"`` (decay scaled by ``lr_t / lr_0``).
    No momentum slot is created when ``momentum == 0``.

    Args:
        learning_rate: float >= 0, a schedule, or a callable.
        weight_decay: float >= 0 (default 0, as Keras's and torch's SGD).
        momentum: in [0, 1).  nesterov: bool.  Other arguments as :class:`AdamW`.
    """ + _rule.__doc__

    def __init__(self, learning_rate=0.01, weight_decay=0.0, momentum=0.0, nesterov=False,
                 convention=DEFAULT, exclude_from_weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name="SGDW", **kwargs):
        checked = _validate.sgdw(momentum, nesterov)
        super().__init__(learning_rate, weight_decay, convention, exclude_from_weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        self.momentum = checked["momentum"]
        self.nesterov = checked["nesterov"]

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self._slots_for(var_list, "momentum") if self.momentum else None

    def update_step(self, gradient, variable, learning_rate):
        lr, decay = self._coefficients(variable, learning_rate)
        buf = self._slot(self._momentums, variable)
        new_x, new_buf = _rule.sgd_update(self.convention, variable,
                                          ops.cast(gradient, variable.dtype), buf, lr, decay,
                                          self.momentum, self.nesterov)
        if buf is not None:
            self.assign(buf, new_buf)
        self.assign(variable, new_x)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config
