"""Where AdamW's / SGDW's ``weight_decay`` lives: the family's strategy, one store per optimizer.

A family's :class:`._host.Host` names its store class (``decay_store``); the optimizer makes one
when it is built (:func:`._construction.construct`) and reads and sets ``weight_decay``
through it: ``value()`` (the property), ``set(value)`` (the setter, checked), ``rate(dtype,
iterations)`` (the step's ``lambda``), ``function()`` (a schedule or callable, else None) and
``may_be_zero()``.  Keras 2 and 3 keep it in :class:`VariableStore`; OptimizerV2 as a
hyperparameter (``legacy``'s store, through ``_set_hyper``).

Why a variable: as Keras keeps a float learning rate, a change between steps (``opt.weight_decay
= x`` in a callback) must reach steps that were traced before it (``jax.jit``,
``tf.function``, XLA), as it does eager ones and OptimizerV2's hyperparameter -- the same
numbers in every family.  The host's own optimizers have no such variable, and files list
optimizer variables by position; so it is kept out of the host's variable list wherever a
traced step can read it from outside (TensorFlow, torch), and where it cannot (JAX's stateless
steps) the adapter saves the host's list and reads both (:meth:`._host.Host.hold`).
"""

import numbers

from . import _checks
from . import _schedules
from . import _validate
from ._saving import as_given
from ._saving import remember


class VariableStore(object):
    """Keras 2 and 3: a float in a float32 variable of optcompat's own (the optimizer's
    ``_weight_decay_variable``: a checkpoint finds it by that name), the float last given kept
    beside it (``_weight_decay``); a schedule, a callable or None (no decay) as given, with no
    variable (a schedule or callable is called in each step)."""

    def __init__(self, optimizer, value):
        self.optimizer = optimizer
        host = optimizer._host
        if value is None or callable(value):
            host.hold(optimizer, "_weight_decay_variable", None)
            self.variable = None
            optimizer._weight_decay = value
            return
        # a tensor: its value (as Keras takes a tensor rate)
        if not isinstance(value, float):
            value = host.read_hyper(value)
            if value is None:
                raise _validate.ArgumentTypeError(
                    "`weight_decay` must be a concrete value when the optimizer is made; "
                    "received a symbolic tensor (give a float, a schedule or a callable)."
                )
        self.variable = host.scalar_variable(optimizer, "weight_decay", value)
        host.hold(optimizer, "_weight_decay_variable", self.variable)
        self._assign(value)

    def _assign(self, value):
        self.variable.assign(value)
        self.optimizer._weight_decay = value
        remember(self.optimizer, "weight_decay", value)

    def _given(self, stored):
        """``weight_decay`` as given for the variable's value ``stored`` (:func:`as_given`),
        kept as the plain value (:meth:`may_be_zero`), also after a restore."""
        self.optimizer._weight_decay = as_given(self.optimizer, "weight_decay", stored)
        return self.optimizer._weight_decay

    def value(self):
        """The decoupled decay ``lambda`` (a float, a schedule or callable, or None: none)."""
        stored = (
            None
            if self.variable is None
            else self.optimizer._host.concrete(self.variable)
        )
        if stored is None:
            return getattr(self.optimizer, "_weight_decay", None)
        return self._given(stored)

    def set(self, value):
        optimizer = self.optimizer
        if self.variable is None:  # created without one: a plain value or callable
            value = _schedules.adopt(value, optimizer._host.schedules)
            _checks.own_keras(optimizer, "weight_decay", value)
            optimizer._weight_decay = _validate.decay_rate(
                value, optimizer._host.is_schedule, optional=True
            )
            return
        if callable(value) and not isinstance(value, numbers.Number):
            raise _validate.ArgumentTypeError(
                "`weight_decay` was given as a number, so it lives in a variable that compiled "
                "steps read; it can be set to another number, not to %r. Give a schedule or "
                "callable as `weight_decay` when the optimizer is made." % (value,)
            )
        self._assign(_validate.at_least("weight_decay", value))

    def rate(self, dtype, iterations):
        """This step's ``lambda``: a float where the step runs on concrete values (so a zero
        skips the decay), else the variable read in the step, so that a traced step sees a
        change made after it was traced; a schedule's value at ``iterations`` (0-based), a
        callable's value."""
        optimizer = self.optimizer
        xp = optimizer._host.xp
        if self.variable is None:
            value = optimizer._weight_decay
            if callable(value):
                value = value(iterations) if _schedules.takes_step(value) else value()
                value = _validate.traced_rate("weight_decay", value)
                return xp.cast(value, dtype)
            return value or 0.0
        stored = optimizer._host.concrete(self.variable)
        if stored is None:
            return xp.cast(self.variable, dtype)
        return self._given(stored)

    def function(self):
        """``weight_decay`` where it is a schedule or callable, else None."""
        value = self.optimizer.__dict__.get("_weight_decay")
        return value if callable(value) and self.variable is None else None

    def may_be_zero(self):
        """Whether ``weight_decay`` was last set to 0: a traced fast step then makes its
        decay pass conditional (it still reads the value in the step)."""
        return getattr(self.optimizer, "_weight_decay", None) == 0.0
