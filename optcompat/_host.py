"""What the shared core asks of a family's host: one :class:`Host` object per family.

The core -- AdamW / SGDW (:class:`._common.Decoupled`), the ``decoupled()`` classes
(:class:`._extension.Extension`) and keras-adamw's extras (:mod:`._keras_adamw`) -- reaches
the framework only through ``self._host``: the family's ``HOST``, made once in the family's
module (``legacy``, ``keras2``, ``keras3``) and chosen there at import, as
``keras/src/optimizers/optimizer.py`` chooses its backend class (Keras 3: one per backend).
Every class of a family holds the same object (:class:`Hosted`); no hook is copied from one
class onto another.

The contract (``optimizer`` is the optcompat optimizer asking):

``family``                          the family's name
``xp``                              the array namespace the rule runs on (:mod:`._rule`)
``optimizer_class``, ``kind``       the host's optimizer base class, and how a message names it
``schedules``, ``schedule_module``  optcompat.schedules' classes for this Keras; the host's own
                                    (made from what :func:`._detect.host` found)
``callable_rates``                  whether the host calls a plain function as the learning rate
``decay_store``                     where ``weight_decay`` lives (:mod:`._weight_decay`)
``take_aliases(learning_rate, kwargs)``  the rate, where ``kwargs`` hold the host's alias of it
``check_arguments(checked)``        refuse what this host release cannot do (before anything
                                    is built)
``is_schedule(value)``              a host ``LearningRateSchedule``
``initial_rate(learning_rate)``     a schedule's value at step 0 as a float, else None
``reference_rate(learning_rate)``   ``lr_0``, what ``eta_t = lr_t / lr_0`` is measured against
``learning_rate_of(optimizer)``     the rate as the host keeps it (a float, schedule, callable)
``read_hyper(value)``               a host tensor's value as a float (None: symbolic), or
                                    :data:`._validate.OTHER` for anything else
``scalar_variable(optimizer, name, value)``, ``hold(optimizer, name, variable)``
                                    a float32 variable of optcompat's own (``weight_decay``,
                                    ``t_cur``), and keeping it as an attribute
``concrete(variable)``              its value as a float now; None inside a traced step
``eager()``                         whether values are concrete now (not inside a traced step)
``assign(optimizer, variable, value)``, ``value_of(variable)``, ``group(writes)``
                                    writing a new value; the value as the rule reads it; a
                                    step's writes as the host's per-variable step returns them
``identity(optimizer, variable)``   a key that finds ``variable`` however a step hands it
``allows_decay(optimizer, variable)``  the host's own exclusion (``exclude_from_weight_decay``)
``variable_name(variable)``, ``display_name(variable)``
                                    the name exclusion patterns and ``lr_multipliers`` are
                                    matched against; the name messages give
``keep(optimizer, key, value)``     keep a declaration's own checked argument (``beta_1``)
``hyper_value(optimizer, name, dtype)``  a step-time argument (``beta_1``, ``momentum``)
``lr0_value(optimizer, dtype)``     ``lr_0``, what the schedule multiplier ``lr_t / lr_0``
                                    divides by (None: ``eta_t = 1``)
``values_of(optimizer, variable, slots)``  the variable's and its slots' values as the rule
                                    reads them
``config_value(optimizer, name)``   a setting as ``get_config`` gives it (a tensor: its value)
``foreign_arguments``               the other families' host arguments this host does not take:
                                    ``{key: whether a value changes nothing here}``.  A config
                                    another family wrote (its name resolves here: :mod:`._names`)
                                    loads with them dropped; a value that would change something
                                    is kept, and the host refuses it, naming it
"""

import numbers

from . import _decay
from . import _schedules
from . import _validate
from . import _weight_decay


class Host(object):
    """The defaults; a family's subclass overrides what its framework does otherwise."""

    family = None
    xp = None
    kind = "a Keras optimizer"
    foreign_arguments = {}
    decay_store = _weight_decay.VariableStore
    callable_rates = True

    def __init__(self, keras=None, optimizer_class=None, host_name=None):
        """The family's host: ``keras`` and ``optimizer_class`` as :func:`._detect.host`
        found them; ``host_name`` names it in messages (default ``keras.__name__``)."""
        self.optimizer_class = optimizer_class
        self.schedule_module = None if keras is None else keras.optimizers.schedules
        self.schedules = (
            {}
            if keras is None
            else _schedules.make(keras, self.xp, host_name or keras.__name__)
        )

    def take_aliases(self, learning_rate, kwargs):
        return learning_rate

    def check_arguments(self, checked):
        pass

    def is_schedule(self, value):
        return isinstance(value, self.schedule_module.LearningRateSchedule)

    def initial_rate(self, learning_rate):
        raise NotImplementedError

    def reference_rate(self, learning_rate):
        """``lr_0``: an optcompat schedule's ``base_learning_rate`` (its peak after a warm-up),
        another schedule's value at step 0, None for a float or callable rate."""
        if getattr(learning_rate, "_optcompat_schedule", False):
            return learning_rate.base_rate(self.initial_rate)
        return self.initial_rate(learning_rate)

    def learning_rate_of(self, optimizer):
        return optimizer._learning_rate

    def read_hyper(self, value):
        return _validate.OTHER

    def scalar_variable(self, optimizer, name, value):
        raise NotImplementedError

    def hold(self, optimizer, name, variable):
        setattr(optimizer, name, variable)

    def concrete(self, variable):
        raise NotImplementedError

    def eager(self):
        return True

    def assign(self, optimizer, variable, value):
        return variable.assign(value)

    def value_of(self, variable):
        return variable

    def group(self, writes):
        return None

    def identity(self, optimizer, variable):
        return id(variable)

    def allows_decay(self, optimizer, variable):
        return True

    def variable_name(self, variable):
        return getattr(variable, "path", None) or variable.name

    def display_name(self, variable):
        return self.variable_name(variable)

    def keep(self, optimizer, key, value):
        setattr(optimizer, key, value)

    def hyper_value(self, optimizer, name, dtype):
        value = getattr(optimizer, name)
        # a tensor given
        return value if isinstance(value, float) else self.xp.cast(value, dtype)

    def lr0_value(self, optimizer, dtype):
        return optimizer._decay.lr0_value(self.xp, dtype)

    def values_of(self, optimizer, variable, slots):
        return self.value_of(variable), slots

    def config_value(self, optimizer, name):
        value = getattr(optimizer, name)
        if isinstance(value, (numbers.Number, str)) or value is None:
            return value
        got = self.read_hyper(value)  # a tensor given: its value now
        return value if got is _validate.OTHER else got


class Hosted(object):
    """A class of the core that holds its family's :class:`Host` (``_host``, set by the
    family's class)."""

    _host = Host()

    def _own_rates_of(self, variable):
        """``(factor, (l1, l2) or None)``, or None (:meth:`._decay.Decay.own_rates`)."""
        return self._decay.own_rates(
            self._host.variable_name(variable), _decay.names_of(variable)
        )

    def _decays(self, variable):
        """Whether ``variable`` decays: no exclusion pattern matches it and the host allows it."""
        if self._decay.excludes(self._host.variable_name(variable)):
            return False
        return self._host.allows_decay(self, variable)
