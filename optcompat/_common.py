"""What every family shares, host-free: the mixin placed between a declaration
(:mod:`._optimizers`) and the host's optimizer class.

Construction (:meth:`Decoupled._construct`) checks every argument before the host's
``__init__``; the step (:meth:`Decoupled._apply_one`) computes the declaration's
coefficients, picks each variable's decay and runs the rule or a fast path.  The framework
is reached through the family's :class:`._host.Host` (``self._host``: schedules, rates,
optcompat's own variables); the decay's settings are a :class:`._decay.Decay`.  A family's
optimizer class adds only the methods its host class calls or lets it override:

``_init_host(checked, name, kwargs)``     the host's ``__init__`` and learning rate
``_hyper_value(name, dtype)``             a step-time argument (``beta_1``, ``momentum``)
``_slot_values(variable)``                the variable's slots (:meth:`_slots_at` its index)
``_dense(gradient)``, ``_fast_one(...)``             (:class:`._tf.FusedKernels`)
"""

import numbers

from . import _checks, _decay, _host, _saving, _schedules, _validate


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

    # -- construction ------------------------------------------------------------------
    def _construct(
        self,
        own,
        *,
        learning_rate,
        weight_decay,
        convention,
        exclude,
        clipnorm,
        clipvalue,
        global_clipnorm,
        name,
        kwargs,
        lr_multipliers=None,
        weight_decays=None,
        strict_names=False,
        fast_path="auto",
    ):
        """Check everything, then build: the host, the decoupled decay (a
        :class:`._decay.Decay`), ``own`` (the declaration's checked arguments: betas, epsilon,
        momentum, ...)."""
        multipliers = _validate.lr_multipliers(lr_multipliers)
        decays = _validate.weight_decays(weight_decays)
        strict = _validate.boolean("strict_names", strict_names)
        fast_path = _validate.fast_path(fast_path)
        host = self._host
        # optcompat.schedules' classes are the default family's: another family's optimizer
        # takes one made again for its own Keras (_schedules.adopt)
        learning_rate = _schedules.adopt(
            self._take_aliases(learning_rate, kwargs), host.schedules
        )
        weight_decay = _schedules.adopt(weight_decay, host.schedules)
        _checks.own_keras(self, "learning_rate", learning_rate)
        _checks.own_keras(self, "weight_decay", weight_decay)
        checked = _validate.common(
            learning_rate,
            weight_decay,
            convention,
            clipnorm,
            clipvalue,
            global_clipnorm,
            exclude,
            host.is_schedule,
            allow_callable=host.callable_rates,
            optional_decay=self.OPTIONAL_DECAY,
            read=host.read_hyper,
        )
        self._check_host_arguments(checked)
        lr0 = _validate.initial_learning_rate(
            host.reference_rate(checked["learning_rate"]), checked["convention"]
        )
        self._init_host(checked, name, kwargs)
        self.__dict__["_decay_store"] = host.decay_store(self, checked["weight_decay"])
        # outside the host's attribute tracking (which would wrap what it holds)
        self.__dict__.update(
            _decay=_decay.Decay(
                checked["convention"],
                checked["exclude_from_weight_decay"],
                lr0,
                multipliers=multipliers,
                decays=decays,
                strict=strict,
            ),
            _fast_path=fast_path,
        )
        for key, value in own.items():
            self._keep(key, value)
        self._kept = tuple(own)  # get_config writes them back (:func:`._saving.config`)
        if isinstance(checked["learning_rate"], float):
            _saving.remember(self, "learning_rate", checked["learning_rate"])
        self.__dict__["_optcompat_made"] = (
            True  # setters are checked from here on (__setattr__)
        )

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

    def _take_aliases(self, learning_rate, kwargs):
        return learning_rate

    def _check_host_arguments(self, checked):
        """Refuse what this host release cannot do (before anything is built)."""

    def _keep(self, key, value):
        setattr(self, key, value)

    def _hyper_value(self, name, dtype):
        value = getattr(self, name)
        return (
            value if isinstance(value, float) else self._host.xp.cast(value, dtype)
        )  # a tensor given

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
        if (
            store is None
        ):  # the host's __init__ (its default); _construct makes the store
            self._weight_decay = value
            return
        store.set(value)

    # Slots the host's own optimizer creates even where it does not use them (Keras 2's SGD: a
    # momentum slot per variable with momentum 0): created alike, never read
    # (:meth:`._optimizers.Spec._build_slots`).  Here, not in the declaration, which comes
    # first in a class: a family's class sets it.
    _UNUSED_SLOTS = ()

    # -- which variables decay (:meth:`._host.Hosted._decays`) ----------------------------
    def _display_name(self, variable):
        return self._variable_name(variable)

    # -- a variable's own rates: lr_multipliers, weight_decays (keras-adamw's) -----------------
    def _check_names(self, var_list):
        """``strict_names``: refuse a pattern or name matching nothing, before any slot exists."""
        self._decay.check_names(
            [self._variable_name(v) for v in var_list],
            [n for v in var_list for n in _decay.names_of(v)],
        )

    # -- the step ------------------------------------------------------------------------
    def _lr0_value(self, dtype):
        return self._decay.lr0_value(self._host.xp, dtype)

    def _rates(self, dtype, learning_rate, iterations, variable=None):
        """``{"lr": lr_t, "decay": d_t}`` in ``dtype`` (``d_t`` the float 0.0 where the decay
        is a concrete 0), and ``weight_decay``, the ``lambda`` it came from (at ``iterations``);
        ``variable``'s own (:meth:`_own_rates_of`; ``l1``: ``d1_t``) where given."""
        own = None if variable is None else self._own_rates_of(variable)
        lr = self._host.xp.cast(
            _validate.traced_rate("learning_rate", learning_rate), dtype
        )
        eta = self._schedule_multiplier(dtype)
        if eta is not None:
            lr = lr * eta
        return self._decay.coefficients(
            lr,
            lambda: self._decay_store.rate(dtype, iterations),
            own=own,
            eta=eta,
            lr0=None if eta is not None else self._lr0_value(dtype),
        )

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
        self, gradient, variable, slots, rate, iterations, decays, shared=None
    ):
        """``(True, op)`` having run this variable's step on a fast path, else ``(False, None)``."""
        return False, None

    def _apply_one(self, gradient, variable, rate, iterations, shared=None):
        """One step on one variable, every family's (Keras 2 / 3 ``update_step``, OptimizerV2's
        ``_resource_apply_dense``): ``rate()`` gives the learning rate, ``iterations`` is the
        0-based step count; ``shared``: the step's coefficients for the variable's dtype where
        the host computed them once for all variables (OptimizerV2's ``apply_state``).  Returns
        the step's writes as the host takes them (:meth:`._host.Host.group`)."""
        slots = self._slot_values(variable)
        gradient = self._dense(gradient)
        decays = self._decays(variable)
        own = (
            self._own_rates_of(variable) is not None
        )  # its own coefficients: the rule, op by op
        if not own:
            done, op = self._fast_one(
                gradient, variable, slots, rate, iterations, decays, shared
            )
            if done:
                return op
        xp, host = self._host.xp, self._host
        dtype = getattr(variable.dtype, "base_dtype", variable.dtype)
        c = (
            shared
            if shared is not None and not own
            else self._step_coefficients(
                xp, dtype, rate(), iterations, variable if own else None
            )
        )
        x, slot_values = self._values_of(variable, slots)
        new = self._new_values(
            xp,
            x,
            xp.cast(gradient, dtype),
            slot_values,
            c,
            c["decay"] if decays else 0.0,
            c.get("l1") if decays else None,
        )
        return host.group(
            [
                host.assign(self, target, value)
                for target, value in zip((variable,) + slots, new)
                if target is not None
            ]
        )

    def _values_of(self, variable, slots):
        """``variable``'s value and its slots' as the rule reads them."""
        return self._host.value_of(variable), slots

    # -- config ------------------------------------------------------------------------
    def _config_value(self, name):
        value = getattr(self, name)
        if isinstance(value, (numbers.Number, str)) or value is None:
            return value
        got = self._host.read_hyper(value)  # a tensor given: its value now
        return value if got is _validate.OTHER else got

    _FAMILY = None  # each adapter's family name

    # Other families' host arguments this family's host does not take: {key: whether a value
    # changes nothing here}.  A config another family wrote (its name resolves here: _names)
    # loads with them dropped; a value that would change something is kept, and the host
    # refuses it, naming it.
    _FOREIGN_ARGUMENTS = {}
