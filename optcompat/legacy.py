"""AdamW and SGDW for the OptimizerV2 API (``_set_hyper`` / ``add_slot`` / ``_resource_apply_*``).

The host is ``tf.keras.optimizers.Optimizer`` in TensorFlow 2.2-2.10 (the default family
there), ``tf.keras.optimizers.legacy.Optimizer`` in 2.11-2.15 and
``tf_keras.optimizers.legacy.Optimizer`` -- the API that keras-adamw and TensorFlow Addons
extended.  A thin adapter, done the way this API expects:

* hyperparameters through ``_set_hyper`` / ``_get_hyper``: the learning rate, betas,
  momentum and weight decay become ``tf.Variable`` s when the optimizer is built, so
  ``opt.learning_rate = x`` (or ``K.set_value``) takes effect on the next step, eagerly or
  inside an already traced ``tf.function``; ``get_config`` gives plain Python values;
* slots through ``add_slot``: ``m``, ``v`` (and ``vhat`` only with ``amsgrad``) for AdamW,
  ``momentum`` only when ``momentum > 0`` for SGDW;
* per-step coefficients once per (device, dtype) in ``_prepare_local``;
* ``_resource_apply_dense`` and ``_resource_apply_sparse`` both run the one rule
  (:mod:`._rule`).  A sparse gradient (``tf.IndexedSlices``; duplicate indices summed by
  the base class) gives exactly the dense result -- every row's moments decay and every
  weight gets its decay each step, as the host's own Adam does and as the other families
  do -- so sparse equals dense.

The base class keeps what it does: schedules and callables, inverse-time ``decay``,
``clipnorm`` / ``clipvalue`` / ``global_clipnorm`` (where the release has them),
gradient aggregation across replicas, ``minimize``, checkpointing.  Private APIs of the
host are touched only in this module.
"""
import re
import types
import warnings

from . import _detect, _rule, _tf_fast, _validate
from ._conventions import DEFAULT

keras, _Optimizer = _detect.host("legacy")  # ImportError naming the releases if absent
import tensorflow as tf  # noqa: E402  (the host above imported it already)

__all__ = ["AdamW", "SGDW"]

# The array namespace the rule runs on.
_TF = types.SimpleNamespace(sqrt=tf.sqrt, maximum=tf.maximum, power=tf.pow)

_Schedule = keras.optimizers.schedules.LearningRateSchedule

# Feature probe (no version test): `global_clipnorm` arrived in OptimizerV2 in TF 2.4.
_HAS_GLOBAL_CLIPNORM = hasattr(_Optimizer, "global_clipnorm")


def _is_schedule(value):
    return isinstance(value, _Schedule)


def _display_name(variable):
    """``dense/kernel`` for ``dense/kernel:0``: the name users wrote."""
    name = variable.name
    return name[:-2] if name.endswith(":0") else name


def _plain(value):
    """A hyperparameter as a plain Python value (a variable's value is a NumPy scalar)."""
    if tf.is_tensor(value):
        value = keras.backend.get_value(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    return value


def _register(cls):
    # "optcompat.legacy>AdamW": TF 2.9-2.15 and tf_keras have both this family and keras2
    # in one registry, and a registered name can be taken once.
    return keras.utils.register_keras_serializable(package="optcompat.legacy")(cls)


class _Decoupled(_Optimizer):
    """What AdamW and SGDW share: validation, hyperparameters, the decay mask, ``lr_0``."""

    # apply_gradients accepts `experimental_aggregate_gradients` (passed on to the base
    # class), so Keras may aggregate (and clip) gradients before calling it.
    _HAS_AGGREGATE_GRAD = True

    # "auto" / "fused": through TensorFlow's fused training kernels (:mod:`._tf_fast`), as
    # the host's own Adam / SGD; None: the rule op by op.
    fast_path = "auto"

    def _fast_modes(self):
        return ("fused",)

    def __init__(self, learning_rate, weight_decay, convention, exclude_from_weight_decay,
                 clipnorm, clipvalue, global_clipnorm, name, **kwargs):
        if "lr" in kwargs:  # the host's deprecated alias
            warnings.warn("The `lr` argument is deprecated, use `learning_rate` instead.",
                          DeprecationWarning, stacklevel=3)
            learning_rate = kwargs.pop("lr")
        checked = _validate.common(learning_rate, weight_decay, convention, clipnorm, clipvalue,
                                   global_clipnorm, exclude_from_weight_decay, _is_schedule)
        if checked["global_clipnorm"] is not None and not _HAS_GLOBAL_CLIPNORM:
            raise ValueError(
                "`global_clipnorm` needs TensorFlow >= 2.4 (this OptimizerV2 has no global "
                "clipping); received global_clipnorm=%r. Use `clipnorm` or `clipvalue`."
                % (global_clipnorm,))
        lr0 = self._initial_learning_rate(checked["learning_rate"], checked["convention"])
        clipping = {k: checked[k] for k in ("clipnorm", "clipvalue", "global_clipnorm")
                    if checked[k] is not None}
        kwargs.update(clipping)
        super().__init__(name, **kwargs)
        self._set_hyper("learning_rate", checked["learning_rate"])
        self._set_hyper("decay", self._initial_decay)
        self._set_hyper("weight_decay", checked["weight_decay"])
        self.convention = checked["convention"]
        self._exclude_names = checked["exclude_from_weight_decay"]
        self._exclude_re = re.compile("|".join(self._exclude_names)) if self._exclude_names else None
        self._exclude_exact = set()
        self._lr0 = lr0

    def _set_hyper(self, name, value):
        # `opt.weight_decay = x` (between steps: a callback) lands here: checked like the argument
        if name == "weight_decay":
            plain = not (tf.is_tensor(value) or callable(value))
            if plain:
                value = _validate.at_least("weight_decay", value)
            self._weight_decay = value if plain else None  # the float last given (_tf_fast)
        super()._set_hyper(name, value)

    @staticmethod
    def _initial_learning_rate(lr, convention):
        """``lr_0`` of the conventions whose decay follows the schedule: a schedule's value
        at step 0 (else None: eta = 1)."""
        if not _is_schedule(lr):
            return None
        with tf.init_scope():  # eager, even when built inside a tf.function
            value = lr(0)
        try:
            lr0 = float(keras.backend.get_value(value) if tf.is_tensor(value) else value)
        except Exception:  # a TF1 graph: evaluated in the graph at each step instead
            return None
        return _validate.initial_learning_rate(lr0, convention)

    # -- decay mask --------------------------------------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude variables (``var_list``) or name patterns (``var_names``, regular
        expressions searched in variable names) from weight decay, as Keras 3 does."""
        for v in var_list or ():
            self._exclude_exact.add(v.name)
        names = _validate.name_patterns("var_names", var_names)
        if names:
            self._exclude_names = self._exclude_names + names
            self._exclude_re = re.compile("|".join(self._exclude_names))

    def _decays(self, variable):
        name = variable.name
        if name in self._exclude_exact:
            return False
        return self._exclude_re is None or self._exclude_re.search(name) is None

    # -- gradients are checked before the host changes anything ------------------------
    def apply_gradients(self, grads_and_vars, name=None, **kwargs):
        grads_and_vars = list(grads_and_vars)
        for g, v in grads_and_vars:
            if g is None or v is None:
                continue  # the base class filters (and warns about) missing gradients
            var_dtype = tf.as_dtype(v.dtype).base_dtype
            _validate.float_variable(var_dtype.is_floating, var_dtype.name, _display_name(v))
            grad_shape, var_shape = tf.TensorShape(g.shape), tf.TensorShape(v.shape)
            if grad_shape.rank is None or var_shape.rank is None:  # unknown rank: dtype only
                grad_shape = var_shape = tf.TensorShape([])
            _validate.gradient(grad_shape.as_list(), tf.as_dtype(g.dtype).base_dtype.name,
                               var_shape.as_list(), var_dtype.name, _display_name(v))
        self._check_learning_rate()
        return super().apply_gradients(grads_and_vars, name=name, **kwargs)

    def _check_learning_rate(self):
        """In eager steps, refuse a NaN/inf/negative rate from a schedule or callable."""
        lr = self._hyper.get("learning_rate")
        if not callable(lr) or not tf.executing_eagerly():
            return
        step = int(self.iterations.numpy())
        value = lr(self.iterations) if _is_schedule(lr) else lr()
        _validate.current_learning_rate(float(keras.backend.get_value(value)) if tf.is_tensor(value)
                                        else float(value), step)

    # -- per-step coefficients ---------------------------------------------------------
    def _prepare_local(self, var_device, var_dtype, apply_state):
        super()._prepare_local(var_device, var_dtype, apply_state)  # lr_t (schedule, decay)
        coefficients = apply_state[(var_device, var_dtype)]
        lr = coefficients["lr_t"]
        if self._lr0 is not None:
            lr0 = tf.cast(self._lr0, var_dtype)
        elif _is_schedule(self._hyper["learning_rate"]):
            lr0 = tf.cast(self._hyper["learning_rate"](0), var_dtype)
        else:
            lr0 = None  # a float or callable rate: eta_t = 1 (lr_t / lr_t would be 0/0 at 0)
        weight_decay = tf.identity(self._get_hyper("weight_decay", var_dtype))
        coefficients["decay"] = tf.identity(
            _rule.decay_coefficient(self.convention, weight_decay, lr, lr0))

    def _coefficients(self, var, apply_state):
        """The step's coefficients for ``var``'s device and dtype, and ``var``'s decay
        coefficient :math:`d_t` (None where ``var`` is excluded from decay)."""
        var_device, var_dtype = var.device, var.dtype.base_dtype
        coefficients = ((apply_state or {}).get((var_device, var_dtype))
                        or self._fallback_apply_state(var_device, var_dtype))
        return coefficients, (coefficients["decay"] if self._decays(var) else None)

    def _slot_values(self, var, names):
        """``var`` and its slots ``names`` (None for an absent slot), and their values."""
        variables = [var] + [None if n is None else self.get_slot(var, n) for n in names]
        return variables, [None if v is None else v.value() for v in variables]

    def _assign(self, variables, values):
        return tf.group(*[variable.assign(value, use_locking=self._use_locking, read_value=False)
                          for variable, value in zip(variables, values) if variable is not None])

    def _resource_apply_dense(self, grad, var, apply_state=None):
        return self._apply(grad, var, apply_state)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        # Dense semantics (see the module docstring): the rows' sum as a dense gradient.
        dense = tf.convert_to_tensor(tf.IndexedSlices(grad, indices, tf.shape(var, out_type=indices.dtype)))
        return self._apply(dense, var, apply_state)

    def _config(self, *hypers):
        return {h: _plain(self._serialize_hyperparameter(h)) for h in hypers}

    def get_config(self):
        config = super().get_config()
        config.update(self._config("learning_rate", "weight_decay"))
        config.update(decay=self._initial_decay, convention=self.convention,
                      exclude_from_weight_decay=list(self._exclude_names) or None)
        return config


@_register
class AdamW(_Decoupled):
    __doc__ = """Adam with decoupled weight decay (Loshchilov & Hutter), OptimizerV2 API.

    ``convention`` picks whose numbers to reproduce: ``"keras"`` (default, equals
    ``keras.optimizers.AdamW``), ``"torch"`` (``torch.optim.AdamW``), ``"tfa"``
    (``tfa.optimizers.AdamW``: decay not scaled by the learning rate), ``"paper"``
    (Loshchilov & Hutter's Algorithm 2: decay scaled by the schedule multiplier
    ``lr_t / lr_0``), ``"keras-adamw"`` (the paper's decay with Keras's epsilon, as the
    keras-adamw package).

    Args:
        learning_rate: float >= 0, a ``LearningRateSchedule``, or a callable.
        weight_decay: float >= 0, the decoupled decay ``lambda``; ``opt.weight_decay = x``
            sets it for the steps that follow (a hyperparameter variable).
        beta_1, beta_2: in [0, 1).  epsilon: >= 0.  amsgrad: bool.
        convention: one of ``optcompat.CONVENTIONS``.
        exclude_from_weight_decay: list of regular expressions; a variable whose name
            matches one gets no decay.
        clipnorm, clipvalue, global_clipnorm (TF >= 2.4), name, and the base class's other
            keyword arguments (``decay``) as in ``tf.keras``.

    Slots: ``m``, ``v`` and, with ``amsgrad``, ``vhat``.  Sparse gradients give the dense
    result.
    """ + _rule.__doc__

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, convention=DEFAULT, exclude_from_weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="AdamW", **kwargs):
        checked = _validate.adamw(beta_1, beta_2, epsilon, amsgrad)
        super().__init__(learning_rate, weight_decay, convention, exclude_from_weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        self._set_hyper("beta_1", checked["beta_1"])
        self._set_hyper("beta_2", checked["beta_2"])
        self.epsilon = checked["epsilon"]
        self.amsgrad = checked["amsgrad"]

    def _create_slots(self, var_list):
        # One loop per slot, as the host's Adam (the order checkpoints list them in).
        for var in var_list:
            self.add_slot(var, "m")
        for var in var_list:
            self.add_slot(var, "v")
        if self.amsgrad:
            for var in var_list:
                self.add_slot(var, "vhat")

    def _prepare_local(self, var_device, var_dtype, apply_state):
        super()._prepare_local(var_device, var_dtype, apply_state)
        coefficients = apply_state[(var_device, var_dtype)]
        beta_1 = tf.identity(self._get_hyper("beta_1", var_dtype))
        beta_2 = tf.identity(self._get_hyper("beta_2", var_dtype))
        step = tf.cast(self.iterations + 1, var_dtype)
        alpha, eps_hat = _rule.adam_coefficients(_TF, self.convention, step, coefficients["lr_t"],
                                                 beta_1, beta_2, tf.cast(self.epsilon, var_dtype))
        coefficients.update(beta_1=beta_1, beta_2=beta_2, alpha=alpha, eps_hat=eps_hat,
                            # for the fused kernel (:mod:`._tf_fast`), once per step and dtype
                            beta_1_power=tf.pow(beta_1, step), beta_2_power=tf.pow(beta_2, step))

    def _apply(self, grad, var, apply_state):
        coefficients, decay = self._coefficients(var, apply_state)
        if _tf_fast.usable(self, tf, var):
            c = coefficients
            return _tf_fast.apply_adam(tf, var.handle, self.get_slot(var, "m").handle,
                                       self.get_slot(var, "v").handle, grad, c["lr_t"], c["beta_1"],
                                       c["beta_2"], c["beta_1_power"], c["beta_2_power"], c["eps_hat"],
                                       decay, var.dtype.base_dtype, self.convention,
                                       _tf_fast.decay_may_be_zero(self))
        variables, (x, m, v, vmax) = self._slot_values(
            var, ("m", "v", "vhat" if self.amsgrad else None))
        new = _rule.adam_update(_TF, self.convention, x, grad, m, v, vmax,
                                coefficients["alpha"], coefficients["eps_hat"],
                                0.0 if decay is None else decay, coefficients["beta_1"],
                                coefficients["beta_2"])
        return self._assign(variables, new)

    def get_config(self):
        config = super().get_config()
        config.update(self._config("beta_1", "beta_2"))
        config.update(epsilon=self.epsilon, amsgrad=self.amsgrad)
        return config


@_register
class SGDW(_Decoupled):
    __doc__ = """SGD (optionally momentum / Nesterov) with decoupled weight decay, OptimizerV2 API.

    ``convention``: ``"keras"`` (default; momentum as ``keras.optimizers.SGD``),
    ``"torch"`` (momentum buffer as ``torch.optim.SGD``, decay decoupled), ``"tfa"``
    (``tfa.optimizers.SGDW``: decay not scaled by the learning rate), ``"paper"`` and
    ``"keras-adamw"`` (decay scaled by ``lr_t / lr_0``; the two differ in Adam's epsilon
    only).  The ``momentum`` slot exists only when ``momentum > 0``.

    Args:
        learning_rate: float >= 0, a schedule, or a callable.
        weight_decay: float >= 0 (default 0, as Keras's and torch's SGD); settable as AdamW's.
        momentum: in [0, 1).  nesterov: bool.  Other arguments as :class:`AdamW`.
    """ + _rule.__doc__

    def __init__(self, learning_rate=0.01, weight_decay=0.0, momentum=0.0, nesterov=False,
                 convention=DEFAULT, exclude_from_weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name="SGDW", **kwargs):
        checked = _validate.sgdw(momentum, nesterov)
        super().__init__(learning_rate, weight_decay, convention, exclude_from_weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, **kwargs)
        # A Python float decides whether the slot exists; the hyper can still be changed.
        self._momentum = checked["momentum"] > 0
        self._set_hyper("momentum", checked["momentum"])
        self.nesterov = checked["nesterov"]

    def _create_slots(self, var_list):
        if self._momentum:
            for var in var_list:
                self.add_slot(var, "momentum")

    def _prepare_local(self, var_device, var_dtype, apply_state):
        super()._prepare_local(var_device, var_dtype, apply_state)
        apply_state[(var_device, var_dtype)]["momentum"] = tf.identity(
            self._get_hyper("momentum", var_dtype))

    def _apply(self, grad, var, apply_state):
        coefficients, decay = self._coefficients(var, apply_state)
        if _tf_fast.usable(self, tf, var):
            return _tf_fast.apply_sgd(tf, var.handle, self.get_slot(var, "momentum").handle if self._momentum
                                      else None, grad, coefficients["lr_t"], coefficients["momentum"],
                                      self.nesterov, decay, var.dtype.base_dtype, self.convention,
                                      _tf_fast.decay_may_be_zero(self))
        variables, (x, buf) = self._slot_values(var, ("momentum" if self._momentum else None,))
        new = _rule.sgd_update(self.convention, x, grad, buf, coefficients["lr_t"],
                               0.0 if decay is None else decay, coefficients["momentum"], self.nesterov)
        return self._assign(variables, new)

    def get_config(self):
        config = super().get_config()
        config.update(self._config("momentum"))
        config.update(nesterov=self.nesterov)
        return config
