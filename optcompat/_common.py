"""What every family shares, host-free: the mixin placed between a declaration
(:mod:`._optimizers`) and the host's optimizer class: its settable hyperparameters, its
config, and the hooks' defaults.

Construction (:func:`._construction.construct`) checks every argument before the host's
``__init__``; the step (:func:`._step.apply_one`) computes the declaration's coefficients,
picks each variable's decay and runs the rule or a fast path.  The framework is reached
through the family's :class:`._host.Host` (``self._host``: schedules, rates, names, values,
optcompat's own variables); the decay's settings are a :class:`._decay.Decay`.  A family's
optimizer class adds only the methods its host class calls or lets it override:

``_init_host(checked, name, kwargs)``     the host's ``__init__`` and learning rate
``_slot_values(variable)``                the variable's slots (:meth:`_slots_at` its index)
``_dense(gradient)``, ``_fast_one(...)``             (:class:`._tf.FusedKernels`)
"""

from . import _checks
from . import _decay
from . import _host
from . import _validate


class Decoupled(_host.Hosted):
    @property
    def fast_path(self):
        """``"auto"`` / ``"fused"`` / ``"foreach"`` (torch): how the rule is evaluated, never what
        it computes (:mod:`._tf_fast`, :mod:`._torch_fast`); None: the rule op by op.  Checked
        when set; kept in ``get_config``."""
        return self.__dict__.get("_fast_path", "auto")

    @fast_path.setter
    def fast_path(self, value):
        self.__dict__["_fast_path"] = _validate.fast_path(value)

    def _fast_modes(self):
        """The ``fast_path`` values that select a fast path on this host."""
        return ()

    @property
    def convention(self):
        """The weight-decay convention (``optcompat.CONVENTIONS``), fixed when made."""
        return self._decay.convention

    # the settable hyperparameters checked as their arguments are (weight_decay: its property)
    _SETTERS = ("learning_rate", "lr", "beta_1", "beta_2", "momentum")

    def __setattr__(self, name, value):
        if name in self._SETTERS and "_optcompat_made" in self.__dict__:
            value = _checks.setting(self, name, value)
        super(Decoupled, self).__setattr__(name, value)

    # -- weight_decay: the host's store (:mod:`._weight_decay`) ---------------------------
    @property
    def weight_decay(self):
        """The decoupled decay ``lambda`` (a float, a schedule or callable, or None: none);
        settable between steps."""
        store = self.__dict__.get("_decay_store")
        return self.__dict__.get("_weight_decay") if store is None else store.value()

    @weight_decay.setter
    def weight_decay(self, value):
        store = self.__dict__.get("_decay_store")
        # the host's __init__ (its default); _construct makes the store
        if store is None:
            self._weight_decay = value
            return
        store.set(value)

    # Slots the host's own optimizer creates even where it does not use them (Keras 2's SGD: a
    # momentum slot per variable with momentum 0): created alike, never read
    # (:meth:`._optimizers.Spec._build_slots`).  Here, not in the declaration, which comes
    # first in a class: a family's class sets it.
    _UNUSED_SLOTS = ()

    # -- a variable's own rates: lr_multipliers, weight_decays (keras-adamw's) -----------------
    def _check_names(self, var_list):
        """``strict_names``: refuse a pattern or name matching nothing, before any slot exists."""
        self._decay.check_names(
            [self._host.variable_name(v) for v in var_list],
            [n for v in var_list for n in _decay.names_of(v)],
        )

    # -- the step (:mod:`._step`) ---------------------------------------------------------
    def _schedule_multiplier(self, dtype):
        """``eta_t`` where the optimizer holds the schedule multiplier itself (keras-adamw's
        ``eta_t`` variable, :mod:`optcompat.keras_adamw`): the step's rate is then ``eta_t``
        times the host's, and ``eta_t`` scales the decay where the convention says so.  None
        (the default): the host's rate as it is, ``eta_t = lr_t / lr_0``."""
        return None

    def _after_step(self):
        """What the optimizer advances itself once per step, after every variable's update
        (keras-adamw's ``t_cur`` and ``eta_t``); each adapter calls it where its host's step
        ends.  Returns the ops (graph mode), or None: nothing (the default)."""
        return None

    def _dense(self, gradient):
        """The gradient as a dense tensor (hosts that pass ``tf.IndexedSlices`` override)."""
        return gradient

    def _fast_one(
        self, gradient, variable, slots, *, rate, iterations, decays, shared=None
    ):
        """``(True, op)`` having run this variable's step on a fast path, else ``(False, None)``."""
        return False, None
