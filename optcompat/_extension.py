r"""``optcompat.decoupled(OptimizerClass)``: decoupled weight decay in front of any host
optimizer's own step (TensorFlow Addons' ``extend_with_decoupled_weight_decay``), in every family.

Host-free: the arguments, their checks, the config and the decay itself are here; a family
adapter gives only where its host runs the decay (:func:`make` takes the family's hook class):
Keras 3 and Keras 2 in ``_apply_weight_decay`` / ``update_step``, OptimizerV2 in
``_resource_apply_*``.  Before each step of the base optimizer every variable that decays
becomes, with ``x`` its value before the step,

    x <- x - d_t x,     d_t as for AdamW (``optcompat.CONVENTIONS``: lr_t lambda, lambda, or
                        (lr_t / lr_0) lambda)

then the base optimizer takes its step, with its own slots, variables and file layout
unchanged: a file of ``Nadam`` loads into ``decoupled(Nadam)`` and the reverse.
``weight_decay`` is a float >= 0, a ``LearningRateSchedule`` (``lambda_t`` its value at the
0-based step, as TensorFlow Addons calls it) or a callable (``lambda_t = f()``; in Keras 2
and 3 also ``f(step)``), checked where its value is known -- before each eager step, and
when a compiled step is traced where it is a Python number then (a NaN, inf or negative
value is refused before anything changes) -- and saved with the optimizer (a schedule serialized, a
callable as its value then).  Keras 2 and 3 keep ``weight_decay`` as a Python value (no
optimizer variable: the layout stays the base's); a value set between steps reaches steps
traced after it.  OptimizerV2 keeps it as a hyperparameter, as TensorFlow Addons does.
"""

import inspect
import numbers

from . import _checks
from . import _decay
from . import _host
from . import _rule
from . import _schedules
from . import _validate
from ._conventions import DEFAULT

_MADE = {}  # (hook class, base class) -> the decoupled class


class Extension(_host.Hosted):
    """The mixin placed before the base optimizer class; ``__init__`` takes the base's
    arguments plus ``weight_decay``, ``convention`` and ``exclude_from_weight_decay``.  A family
    gives its host (``_host``, :class:`._host.Host`) and where its base keeps ``weight_decay``
    (``_store_weight_decay``, ``_given_weight_decay``)."""

    def __init__(self, *args, **kwargs):
        host = self._host
        weight_decay, convention, exclude = _own_arguments(self, kwargs)
        self._init_base(args, kwargs)
        lr0 = _validate.initial_learning_rate(
            host.reference_rate(host.learning_rate_of(self)), convention
        )
        # (outside any tracking)
        self.__dict__["_decay"] = _decay.Decay(convention, exclude, lr0)
        self._store_weight_decay(weight_decay)

    @property
    def convention(self):
        """The weight-decay convention (``optcompat.CONVENTIONS``), fixed when made."""
        return self._decay.convention

    def _init_base(self, args, kwargs):
        super(Extension, self).__init__(*args, **kwargs)

    def _given_weight_decay(self):
        """``weight_decay`` as stored (a number, schedule or callable)."""
        raise NotImplementedError

    def _decay_off(self):
        """Whether ``weight_decay`` is the number 0 (the step then skips the decay)."""
        value = self._given_weight_decay()
        return isinstance(value, numbers.Number) and not value

    def _weight_decay_at(self, iterations):
        """This step's ``lambda_t``: a schedule's value at ``iterations``, a callable's value."""
        value = self._given_weight_decay()
        # (a Python number is known while a compiled step is traced)
        if callable(value):
            value = value(iterations) if _schedules.takes_step(value) else value()
            return _validate.traced_rate("weight_decay", value)
        return value

    def _check_weight_decay_at(self, step):
        """Before an eager step (``step`` the concrete counter), refuse a NaN, inf or negative
        value of a schedule or callable ``weight_decay``, before anything changes."""
        _checks.rate(self, self._given_weight_decay(), step, "weight_decay")

    # -- what optcompat.keras_adamw's NadamW sets (keras-adamw's eta_t and lr_multipliers) -------
    def _rate_scale(self):
        """A factor on the base's learning rate for the whole step (keras-adamw's ``eta_t``), or
        None: the base's own rate."""
        return None

    def _rate_factor(self, variable):
        """A factor on the base's learning rate for ``variable``'s step (an lr multiplier): 1.0."""
        return 1.0

    def _step_scale(self, variable):
        """``_rate_scale() * _rate_factor(variable)``, or None where both are the default."""
        scale, factor = self._rate_scale(), self._rate_factor(variable)
        if scale is None:
            return None if factor == 1.0 else factor
        return scale if factor == 1.0 else scale * factor

    def _after_step(self):
        """What the optimizer advances itself once per step (as AdamW's,
        :meth:`._common.Decoupled._after_step`)."""
        return None

    def _decayed_value(self, xp, variable, lr, weight_decay):
        """``x - d_t x`` for ``variable`` (the rule's decay, :mod:`._rule`)."""
        dtype = variable.dtype
        lr = xp.cast(lr, dtype)
        lr0 = self._decay.lr0_value(xp, dtype)
        decay = _rule.decay_coefficient(
            self.convention, xp.cast(weight_decay, dtype), lr, lr0
        )
        return _rule.decayed(self.convention, variable, decay)

    def _extension_config(self, config):
        value = self._given_weight_decay()
        if self._host.is_schedule(value):
            value = self._host.schedule_module.serialize(value)
        # as OptimizerV2 saves a callable hyperparameter: its value now
        elif callable(value):
            value = float(value())
        config.update(self._decay.config(), weight_decay=value)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = _deserialized(cls._host, config, custom_objects)
        base = super(Extension, cls).from_config
        try:
            takes = "custom_objects" in inspect.signature(base).parameters
        except (TypeError, ValueError):
            takes = True
        # TF 2.9-2.10's experimental optimizers: from_config(config), no custom_objects
        return base(config, custom_objects=custom_objects) if takes else base(config)


def _own_arguments(optimizer, kwargs):
    """``(weight_decay, convention, exclude_from_weight_decay)`` taken out of ``kwargs`` and
    checked (a schedule of another installed Keras refused, naming it)."""
    if "weight_decay" not in kwargs:
        raise TypeError(
            "%s needs `weight_decay` (a float >= 0, a schedule or a callable: the "
            "decoupled decay), as a keyword argument." % type(optimizer).__name__
        )
    host = optimizer._host
    weight_decay = _schedules.adopt(kwargs.pop("weight_decay"), host.schedules)
    _checks.own_keras(optimizer, "weight_decay", weight_decay)
    _checks.own_keras(optimizer, "learning_rate", kwargs.get("learning_rate"))
    weight_decay = _validate.decay_rate(weight_decay, host.is_schedule)
    convention = _validate.convention(kwargs.pop("convention", DEFAULT))
    exclude = _validate.name_patterns(
        "exclude_from_weight_decay", kwargs.pop("exclude_from_weight_decay", None)
    )
    return weight_decay, convention, exclude


def _deserialized(host, config, custom_objects):
    """``config`` with a serialized schedule ``weight_decay`` made again (optcompat's found
    by class name too)."""
    value = config.get("weight_decay")
    if not isinstance(value, dict):
        return config
    made = host.schedule_module.deserialize(
        value,
        custom_objects=_schedules.custom_objects(value, host.schedules, custom_objects),
    )
    return dict(config, weight_decay=made)


def decoupled(base, hooks, register):
    """A family's ``decoupled(base)``: the class :func:`make` gives, once ``base`` is found
    to be a class of the family's host optimizer (``hooks._host``)."""
    host = hooks._host
    if not (isinstance(base, type) and issubclass(base, host.optimizer_class)):
        raise TypeError("decoupled() takes %s class; received %r." % (host.kind, base))
    return make(hooks, base, register)


def make(hooks, base, register):
    """The class ``decoupled(base)`` for a family whose :class:`Extension` is ``hooks``: named
    ``Decoupled<Base>``, registered by ``register``, made once per base class."""
    if (hooks, base) not in _MADE:
        name = "Decoupled" + base.__name__
        doc = (
            "%s with decoupled weight decay (optcompat.decoupled): ``%s(*args, weight_decay, "
            "convention=%r, exclude_from_weight_decay=None, **kwargs)``, the other arguments "
            "those of %s.%s.\n\n%s"
            % (
                base.__name__,
                name,
                DEFAULT,
                base.__module__,
                base.__name__,
                __doc__.split("\n\n", 1)[1],
            )
        )
        cls = type(
            name,
            (hooks, base),
            {
                "__doc__": doc,
                "__module__": __name__.rsplit(".", 1)[0],
                "__qualname__": name,
            },
        )
        _MADE[(hooks, base)] = register(cls)
    return _MADE[(hooks, base)]
