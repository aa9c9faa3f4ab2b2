"""What every adapter shares, host-free: a mixin placed before the host's optimizer class.

An adapter subclass provides small hooks -- ``xp`` (an array namespace with ``cast``,
``sqrt``, ``maximum``, ``power``), ``_slot(slots, variable)``, ``_assign(variable, value)``,
``_scalar_variable(name, value)``, ``_concrete(variable)``, and optionally
``_host_allows_decay(variable)``, ``_dense(gradient)``, ``_eager()`` -- and calls
:meth:`_adamw_step` / :meth:`_sgdw_step` from its ``update_step``.  The math is
:mod:`._rule`; this module only wires it to slots.

``weight_decay`` lives in an optimizer variable, as Keras keeps a float learning rate: a
change between steps (``opt.weight_decay = x`` in a callback) reaches steps that were traced
before it (``jax.jit``, ``tf.function``, XLA), as it does eager ones and OptimizerV2's
``_set_hyper`` hyperparameter -- the same numbers in every family.
"""
import re
import types

from . import _rule, _validate


def tf_namespace(tf):
    """The array namespace of the rule, over TensorFlow (for the TF-variable adapters)."""
    return types.SimpleNamespace(cast=tf.cast, sqrt=tf.sqrt, maximum=tf.maximum, power=tf.pow)


def _takes_step(schedule):
    # a LearningRateSchedule is called with the step; a plain callable with nothing
    return hasattr(schedule, "get_config") and hasattr(schedule, "__call__")


class Decoupled(object):
    xp = None

    def _keep(self, checked):
        """Keep validated optimizer-specific settings (betas, epsilon, momentum, ...)."""
        for name, value in checked.items():
            setattr(self, name, value)
        self._kept = tuple(checked)  # get_config writes them back (_decoupled_config)

    def _init_decoupled(self, checked, lr0):
        """Keep the validated decoupled-decay settings (after the host's ``__init__``)."""
        self._weight_decay_variable = self._scalar_variable("weight_decay", checked["weight_decay"])
        self._set_weight_decay(checked["weight_decay"])
        self.convention = checked["convention"]
        self._exclude_names = checked["exclude_from_weight_decay"]
        self._exclude_re = re.compile("|".join(self._exclude_names)) if self._exclude_names else None
        self._lr0 = lr0  # checked by the adapter, before the host's __init__

    @property
    def weight_decay(self):
        """The decoupled decay ``lambda`` (a float); settable between steps."""
        variable = getattr(self, "_weight_decay_variable", None)
        value = None if variable is None else self._concrete(variable)
        return getattr(self, "_weight_decay", None) if value is None else self._given(value)

    @weight_decay.setter
    def weight_decay(self, value):
        if getattr(self, "_weight_decay_variable", None) is None:
            self._weight_decay = value  # the host's __init__ (its default); _init_decoupled follows
            return
        self._set_weight_decay(_validate.at_least("weight_decay", value))

    def _set_weight_decay(self, value):
        self._weight_decay_variable.assign(value)
        self._weight_decay = value
        self._weight_decay_stored = self._concrete(self._weight_decay_variable)

    def _given(self, stored):
        """The float last given for the variable's value ``stored`` (its dtype's rounding of
        it); ``stored`` itself where a restore (a checkpoint, a file) changed the variable."""
        if stored != self._weight_decay_stored:
            self._weight_decay, self._weight_decay_stored = stored, stored
        return self._weight_decay

    def _weight_decay_rate(self, dtype):
        """This step's ``lambda``: a float where the step runs on concrete values (so a zero
        skips the decay), else the variable read in the step, so that a traced step sees a
        change made after it was traced."""
        value = self._concrete(self._weight_decay_variable)
        if value is None:
            return self.xp.cast(self._weight_decay_variable, dtype)
        return self._given(value)

    @staticmethod
    def _variable_name(variable):
        return getattr(variable, "path", None) or variable.name

    def _host_allows_decay(self, variable):
        return True

    def _dense(self, gradient):
        """The gradient as a dense tensor (hosts that pass ``tf.IndexedSlices`` override)."""
        return gradient

    def _eager(self):
        """Whether values are concrete now (TensorFlow hosts: not inside a tf.function)."""
        return True

    def _decays(self, variable):
        if self._exclude_re is not None and self._exclude_re.search(self._variable_name(variable)):
            return False
        return self._host_allows_decay(variable)

    def _coefficients(self, variable, learning_rate):
        """``(lr_t, d_t)`` in the variable's dtype."""
        if not self._decays(variable):
            return self.xp.cast(learning_rate, variable.dtype), 0.0
        return self._step_rates(variable.dtype, learning_rate)

    def _step_rates(self, dtype, learning_rate):
        """``(lr_t, d_t)`` in ``dtype`` for a variable that decays (``d_t`` 0.0 without decay)."""
        lr = self.xp.cast(learning_rate, dtype)
        weight_decay = self._weight_decay_rate(dtype)
        if isinstance(weight_decay, float) and weight_decay == 0.0:
            return lr, 0.0
        lr0 = None if self._lr0 is None else self.xp.cast(self._lr0, dtype)
        return lr, _rule.decay_coefficient(self.convention, weight_decay, lr, lr0)

    def _adamw_step(self, gradient, variable, learning_rate, iterations):
        """AdamW on one variable; ``iterations`` is the 0-based step count."""
        xp = self.xp
        lr, decay = self._coefficients(variable, learning_rate)
        step = xp.cast(iterations + 1, variable.dtype)
        alpha, eps_hat = _rule.adam_coefficients(xp, self.convention, step, lr,
                                                 self.beta_1, self.beta_2, self.epsilon)
        m, v, vmax = (self._slot(s, variable)
                      for s in (self._momentums, self._velocities, self._velocity_hats))
        new_x, new_m, new_v, new_vmax = _rule.adam_update(
            xp, self.convention, variable, xp.cast(self._dense(gradient), variable.dtype), m, v, vmax,
            alpha, eps_hat, decay, self.beta_1, self.beta_2)
        self._assign(m, new_m)
        self._assign(v, new_v)
        if vmax is not None:
            self._assign(vmax, new_vmax)
        self._assign(variable, new_x)

    def _sgdw_step(self, gradient, variable, learning_rate):
        lr, decay = self._coefficients(variable, learning_rate)
        buf = self._slot(self._momentums, variable)
        new_x, new_buf = _rule.sgd_update(self.convention, variable,
                                          self.xp.cast(self._dense(gradient), variable.dtype), buf, lr, decay,
                                          self.momentum, self.nesterov)
        if buf is not None:
            self._assign(buf, new_buf)
        self._assign(variable, new_x)

    def _check_learning_rate(self, schedule, iterations):
        """Before a step, refuse a NaN/inf/negative rate from a schedule or callable.

        Only where values are concrete (eager); inside tf.function / jit they are symbolic."""
        if not callable(schedule) or not self._eager():
            return
        try:
            step = int(iterations)
            value = float(schedule(iterations) if _takes_step(schedule) else schedule())
        except Exception:  # symbolic (traced) values cannot be read here
            return
        _validate.current_learning_rate(value, step)

    def _check_gradients(self, pairs, is_float, dtype_name):
        """Refuse the whole step, before any change, if one pair is bad."""
        for g, v in pairs:
            if g is None:
                continue
            name = self._variable_name(v)
            _validate.float_variable(is_float(v.dtype), dtype_name(v.dtype), name)
            _validate.gradient(g.shape, dtype_name(g.dtype), v.shape, dtype_name(v.dtype), name)

    def _decoupled_config(self):
        config = {name: getattr(self, name) for name in self._kept}
        config.update(convention=self.convention,
                      exclude_from_weight_decay=list(self._exclude_names) or None)
        return config


ADAMW_DOC = """Adam with decoupled weight decay (Loshchilov & Hutter), %s.

    ``convention`` picks whose numbers to reproduce: ``"keras"`` (default, equals the host's
    own ``AdamW``), ``"torch"`` (``torch.optim.AdamW``), ``"tfa"`` (TensorFlow Addons: decay
    not scaled by the learning rate), ``"paper"`` (Loshchilov & Hutter's Algorithm 2: decay
    scaled by the schedule multiplier ``lr_t / lr_0``), ``"keras-adamw"`` (the paper's decay
    with Keras's epsilon, as the keras-adamw package).

    Args:
        learning_rate: float >= 0 or a host ``LearningRateSchedule``%s.
        weight_decay: float >= 0, the decoupled decay ``lambda``; ``opt.weight_decay = x``
            sets it for the steps that follow (compiled ones too: it is an optimizer variable).
        beta_1, beta_2: in [0, 1).  epsilon: >= 0.  amsgrad: bool.
        convention: one of ``optcompat.CONVENTIONS``.
        exclude_from_weight_decay: list of regular expressions; a variable whose path
            (or name) matches one gets no decay.
        clipnorm, clipvalue, global_clipnorm, name, and the host's other keyword
            arguments (``use_ema``, ...) as in Keras.
    """ + _rule.__doc__

SGDW_DOC = """SGD (optionally momentum / Nesterov) with decoupled weight decay, %s.

    ``convention``: ``"keras"`` (default; momentum as the host's ``SGD``), ``"torch"``
    (momentum buffer as ``torch.optim.SGD``, decay decoupled), ``"tfa"`` (decay not scaled
    by the learning rate), ``"paper"`` and ``"keras-adamw"`` (decay scaled by ``lr_t / lr_0``;
    the two differ in Adam's epsilon only).  No momentum slot
    is created when ``momentum == 0``.

    Args:
        learning_rate: float >= 0 or a host ``LearningRateSchedule``%s.
        weight_decay: float >= 0 (default 0, as Keras's and torch's SGD); settable as AdamW's.
        momentum: in [0, 1).  nesterov: bool.  Other arguments as ``AdamW``.
    """ + _rule.__doc__
