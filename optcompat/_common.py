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
``_dense(gradient)``, ``_eager()``, ``_fast_one(...)``  (:class:`._tf.FusedKernels`)

``weight_decay`` lives in an optimizer variable, as Keras keeps a float learning rate: a
change between steps (``opt.weight_decay = x`` in a callback) reaches steps that were traced
before it (``jax.jit``, ``tf.function``, XLA), as it does eager ones and OptimizerV2's
``_set_hyper`` hyperparameter -- the same numbers in every family.  The host's own optimizers
have no such variable, and files list optimizer variables by position; so it is kept out of
the host's variable list wherever a traced step can read it from outside (TensorFlow, torch),
and where it cannot (JAX's stateless steps) the adapter saves the host's list and reads both.
"""
import numbers
import os
import struct
import sys
import warnings

from . import _decay, _detect, _host, _rule, _schedules, _validate

_DROPPED = {}  # family -> formats_dropping_state(family), read once


def _float32(value):
    """``value`` rounded to float32, as a float32 variable stores it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _takes_step(schedule):
    # a LearningRateSchedule is called with the step; a plain callable with nothing
    return hasattr(schedule, "get_config") and hasattr(schedule, "__call__")


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
    def _construct(self, own, *, learning_rate, weight_decay, convention, exclude, clipnorm, clipvalue,
                   global_clipnorm, name, kwargs, lr_multipliers=None, weight_decays=None,
                   strict_names=False, fast_path="auto"):
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
        learning_rate = _schedules.adopt(self._take_aliases(learning_rate, kwargs), host.schedules)
        weight_decay = _schedules.adopt(weight_decay, host.schedules)
        self._own_keras("learning_rate", learning_rate)
        self._own_keras("weight_decay", weight_decay)
        checked = _validate.common(learning_rate, weight_decay, convention, clipnorm, clipvalue,
                                   global_clipnorm, exclude, host.is_schedule,
                                   allow_callable=host.callable_rates,
                                   optional_decay=self.OPTIONAL_DECAY, read=host.read_hyper)
        self._check_host_arguments(checked)
        lr0 = _validate.initial_learning_rate(host.reference_rate(checked["learning_rate"]),
                                              checked["convention"])
        self._init_host(checked, name, kwargs)
        self._init_weight_decay(checked["weight_decay"])
        # outside the host's attribute tracking (which would wrap what it holds)
        self.__dict__.update(
            _decay=_decay.Decay(checked["convention"], checked["exclude_from_weight_decay"], lr0,
                                multipliers=multipliers, decays=decays, strict=strict),
            _fast_path=fast_path)
        for key, value in own.items():
            self._keep(key, value)
        self._kept = tuple(own)  # get_config writes them back (_decoupled_config)
        if isinstance(checked["learning_rate"], float):
            self._remember("learning_rate", checked["learning_rate"])
        self.__dict__["_optcompat_made"] = True  # setters are checked from here on (__setattr__)

    @property
    def convention(self):
        """The weight-decay convention (``optcompat.CONVENTIONS``), fixed when made."""
        return self._decay.convention

    def _own_keras(self, name, value):
        """Refuse a schedule or optimizer of another installed Keras (tf_keras beside Keras 3)."""
        _validate.own_keras(name, value, self._host.is_schedule, _detect.keras_of, type(self))

    # the settable hyperparameters checked as their arguments are (weight_decay: its property)
    _SETTERS = ("learning_rate", "lr", "beta_1", "beta_2", "momentum")

    def __setattr__(self, name, value):
        if name in self._SETTERS and "_optcompat_made" in self.__dict__:
            value = self._checked_setting(name, value)
        super(Decoupled, self).__setattr__(name, value)

    def _checked_setting(self, name, value):
        """``opt.<name> = value`` between steps, checked as the argument is, before the host
        stores it (a refused value changes nothing)."""
        if name in ("learning_rate", "lr"):
            value = _schedules.adopt(value, self._host.schedules)
            self._own_keras(name, value)
            return _validate.learning_rate(value, self._host.is_schedule, self._host.callable_rates,
                                           self._host.read_hyper, name=name)
        if name in self.HYPERS:
            return _validate.host_value(name, value, _validate.in_unit_interval, self._host.read_hyper)
        return value

    def _take_aliases(self, learning_rate, kwargs):
        return learning_rate

    def _check_host_arguments(self, checked):
        """Refuse what this host release cannot do (before anything is built)."""

    def _keep(self, key, value):
        setattr(self, key, value)

    def _remember(self, name, value):
        """Note the float ``value`` given for ``name``: its config gives it back (not a float32
        variable's rounding of it, ``0.009999999776482582`` for ``0.01``)."""
        kept = None if value is None else (value, float(value), _float32(value))  # read per step
        self.__dict__.setdefault("_optcompat_given", {})[name] = kept  # outside any tracker

    def _as_given(self, name, stored):
        """``stored`` (a variable's value) as the float last given for ``name`` where it is
        that float or its float32 rounding; ``stored`` itself where something else (a
        restore) set it.  A decay given as None (none) stays None while it is 0."""
        remembered = self.__dict__.get("_optcompat_given", {})
        kept = remembered.get(name)
        if kept is None:
            return None if name in remembered and stored == 0.0 else stored
        if isinstance(stored, float) and stored in kept[1:]:
            return kept[0]
        return stored

    def _hyper_value(self, name, dtype):
        value = getattr(self, name)
        return value if isinstance(value, float) else self.xp.cast(value, dtype)  # a tensor given

    # -- weight_decay ------------------------------------------------------------------
    def _init_weight_decay(self, value):
        if value is None or callable(value):
            # None: no decay and no variable (SGDW's default, as Keras's SGD); a schedule or
            # callable: called in each step (no variable to hold a value)
            self._host.hold(self, "_weight_decay_variable", None)
            self._weight_decay = value
            return
        if not isinstance(value, float):  # a tensor: its value, in the variable (as a tensor learning rate)
            value = self._host.read_hyper(value)
            if value is None:
                raise _validate.ArgumentTypeError(
                    "`weight_decay` must be a concrete value when the optimizer is made; received a "
                    "symbolic tensor (give a float, a schedule or a callable).")
        self._host.hold(self, "_weight_decay_variable", self._host.scalar_variable(self, "weight_decay", value))
        self._set_weight_decay(value)

    @property
    def weight_decay(self):
        """The decoupled decay ``lambda`` (a float, a schedule or callable, or None: none);
        settable between steps."""
        variable = getattr(self, "_weight_decay_variable", None)
        value = None if variable is None else self._host.concrete(variable)
        return getattr(self, "_weight_decay", None) if value is None else self._given(value)

    @weight_decay.setter
    def weight_decay(self, value):
        if "_weight_decay_variable" not in self.__dict__:
            self._weight_decay = value  # the host's __init__ (its default); _construct follows
            return
        if self._weight_decay_variable is None:  # created without one: a plain value or callable
            value = _schedules.adopt(value, self._host.schedules)
            self._own_keras("weight_decay", value)
            self._weight_decay = _validate.decay_rate(value, self._host.is_schedule, optional=True)
            return
        if callable(value) and not isinstance(value, numbers.Number):
            raise _validate.ArgumentTypeError(
                "`weight_decay` was given as a number, so it lives in a variable that compiled steps "
                "read; it can be set to another number, not to %r. Give a schedule or callable as "
                "`weight_decay` when the optimizer is made." % (value,))
        self._set_weight_decay(_validate.at_least("weight_decay", value))

    def _set_weight_decay(self, value):
        self._weight_decay_variable.assign(value)
        self._weight_decay = value
        self._remember("weight_decay", value)

    def _given(self, stored):
        """``weight_decay`` as given for the variable's value ``stored`` (:meth:`_as_given`),
        kept as the plain value (:meth:`_decay_may_be_zero`), also after a restore."""
        self._weight_decay = self._as_given("weight_decay", stored)
        return self._weight_decay

    def _weight_decay_rate(self, dtype, iterations):
        """This step's ``lambda``: a float where the step runs on concrete values (so a zero
        skips the decay), else the variable read in the step, so that a traced step sees a
        change made after it was traced; a schedule's value at ``iterations`` (0-based), a
        callable's value."""
        if self._weight_decay_variable is None:
            value = self._weight_decay
            if callable(value):
                value = _validate.traced_rate("weight_decay", value(iterations) if _takes_step(value) else value())
                return self.xp.cast(value, dtype)
            return value or 0.0
        value = self._host.concrete(self._weight_decay_variable)
        if value is None:
            return self.xp.cast(self._weight_decay_variable, dtype)
        return self._given(value)

    def _decay_may_be_zero(self):
        """Whether ``weight_decay`` was last set to 0: a traced fast step then makes its
        decay pass conditional (it still reads the value in the step)."""
        return getattr(self, "_weight_decay", None) == 0.0

    # -- slots -------------------------------------------------------------------------
    # slots the host's own optimizer creates even where it does not use them (Keras 2's SGD:
    # a momentum slot per variable with momentum 0): created alike, never read
    _UNUSED_SLOTS = ()

    def _build_slots(self, var_list, make):
        """Each slot's list of variables, ``make(variable, key)`` each, in the host's order:
        a group's slots variable by variable (SLOT_GROUPS); None for a slot it lacks."""
        for group in self.SLOT_GROUPS:
            keys = [k for k in group if self._has_slot(k) or k in self._UNUSED_SLOTS]
            lists = {k: [] for k in keys}
            for v in var_list:
                for k in keys:
                    lists[k].append(make(v, k))
            for k in group:
                setattr(self, self.SLOT_ATTRIBUTES[k], lists.get(k))

    def _slots_at(self, index):
        """The slot variables of the model variable at ``index``, in the declaration's order
        (None for a slot this optimizer does not use)."""
        return tuple(getattr(self, self.SLOT_ATTRIBUTES[key])[index] if self._has_slot(key) else None
                     for key in self.SLOTS)

    # -- which variables decay -----------------------------------------------------------
    @staticmethod
    def _variable_name(variable):
        return getattr(variable, "path", None) or variable.name

    def _display_name(self, variable):
        return self._variable_name(variable)

    def _decays(self, variable):
        if self._decay.excludes(self._variable_name(variable)):
            return False
        return self._host.allows_decay(self, variable)

    # -- a variable's own rates: lr_multipliers, weight_decays (keras-adamw's) -----------------
    def _own_rates_of(self, variable):
        """``(factor, (l1, l2) or None)``, or None (:meth:`._decay.Decay.own_rates`)."""
        return self._decay.own_rates(self._variable_name(variable), _decay.names_of(variable))

    def _check_names(self, var_list):
        """``strict_names``: refuse a pattern or name matching nothing, before any slot exists."""
        self._decay.check_names([self._variable_name(v) for v in var_list],
                                [n for v in var_list for n in _decay.names_of(v)])

    # -- the step ------------------------------------------------------------------------
    def _lr0_value(self, dtype):
        return self._decay.lr0_value(self.xp, dtype)

    def _rates(self, dtype, learning_rate, iterations, variable=None):
        """``{"lr": lr_t, "decay": d_t}`` in ``dtype`` (``d_t`` the float 0.0 where the decay
        is a concrete 0), and ``weight_decay``, the ``lambda`` it came from (at ``iterations``);
        ``variable``'s own (:meth:`_own_rates_of`; ``l1``: ``d1_t``) where given."""
        own = None if variable is None else self._own_rates_of(variable)
        lr = self.xp.cast(_validate.traced_rate("learning_rate", learning_rate), dtype)
        eta = self._schedule_multiplier(dtype)
        if eta is not None:
            lr = lr * eta
        return self._variable_rates(dtype, lr, iterations, *(own or (1.0, None)), eta=eta)

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

    def _variable_rates(self, dtype, lr, iterations, factor, decays, eta=None):
        """``lr_t * factor``, and ``d_t`` (``d1_t``) from a variable's own decays or, for None,
        ``weight_decay``: where ``d_t`` follows ``lr_t`` (keras, torch) the factor's rate, else
        the schedule multiplier (``eta``, or ``lr_t / lr_0`` of the optimizer's rate) (factor 1,
        decays None: the step's shared coefficients)."""
        own_lr = lr if factor == 1.0 else lr * factor
        follows = own_lr if _rule.CONVENTIONS[self.convention].decay == "lr" else lr
        l1, weight_decay = (0.0, self._weight_decay_rate(dtype, iterations)) if decays is None else decays
        c = {"lr": own_lr, "decay": 0.0, "weight_decay": weight_decay}
        lr0 = None if eta is not None else self._lr0_value(dtype)
        if not (isinstance(weight_decay, float) and weight_decay == 0.0):
            c["decay"] = _rule.decay_coefficient(self.convention, weight_decay, follows, lr0, eta)
        if l1:
            c["l1"] = _rule.decay_coefficient(self.convention, l1, follows, lr0, eta)
        return c

    def _dense(self, gradient):
        """The gradient as a dense tensor (hosts that pass ``tf.IndexedSlices`` override)."""
        return gradient

    def _eager(self):
        """Whether values are concrete now (TensorFlow hosts: not inside a tf.function)."""
        return True

    def _fast_one(self, gradient, variable, slots, rate, iterations, decays, shared=None):
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
        own = self._own_rates_of(variable) is not None  # its own coefficients: the rule, op by op
        if not own:
            done, op = self._fast_one(gradient, variable, slots, rate, iterations, decays, shared)
            if done:
                return op
        xp, host = self.xp, self._host
        dtype = getattr(variable.dtype, "base_dtype", variable.dtype)
        c = shared if shared is not None and not own else self._step_coefficients(
            xp, dtype, rate(), iterations, variable if own else None)
        x, slot_values = self._values_of(variable, slots)
        new = self._new_values(xp, x, xp.cast(gradient, dtype), slot_values, c,
                               c["decay"] if decays else 0.0, c.get("l1") if decays else None)
        return host.group([host.assign(self, target, value)
                           for target, value in zip((variable,) + slots, new) if target is not None])

    def _values_of(self, variable, slots):
        """``variable``'s value and its slots' as the rule reads them."""
        return self._host.value_of(variable), slots

    # -- checks before a step --------------------------------------------------------------
    def _check_learning_rate(self, schedule, iterations, name="learning_rate"):
        """Before a step, refuse a NaN/inf/negative rate from a schedule or callable, where
        its value is concrete: at the counter ``iterations`` in an eager step; for
        ``iterations`` None (a step about to be traced) a plain callable's Python number.  A
        traced step checks the values it computes too (:meth:`_rates`)."""
        if not callable(schedule):
            return
        if iterations is None:
            if not _takes_step(schedule):
                try:
                    value = schedule()
                except Exception:  # reads what is there only in the step: the host's to call
                    return
                _validate.traced_rate(name, value)
            return
        if not self._eager():
            return
        try:
            step = int(iterations)
            value = self._as_float(schedule(iterations) if _takes_step(schedule) else schedule())
        except Exception:  # symbolic (traced) values cannot be read here
            return
        if value is not None:
            _validate.current_rate(name, value, step)

    def _as_float(self, value):
        """A number, host tensor or variable as a float (None where it is symbolic): Keras 3.3's
        Variable has no ``__float__``."""
        if isinstance(value, numbers.Real):
            return float(value)
        got = self._host.read_hyper(value)
        return float(value) if got is _validate.OTHER else got

    def _weight_decay_function(self):
        """``weight_decay`` where it is a schedule or callable, else None."""
        value = self.__dict__.get("_weight_decay")
        return value if callable(value) and self._weight_decay_variable is None else None

    def _check_weight_decay(self, iterations):
        """Before a step, refuse a NaN/inf/negative ``weight_decay`` from a schedule or callable."""
        function = self._weight_decay_function()
        if function is not None:
            self._check_learning_rate(function, iterations, "weight_decay")

    def _check_gradients(self, pairs, is_float, dtype_name, shapes=None):
        """Refuse the whole step, before any change, if one pair is bad; ``shapes(g, v)``
        gives both static shapes as sequences."""
        for g, v in pairs:
            if g is None or v is None:
                continue  # the host filters (and warns about) missing gradients
            name = self._display_name(v)
            _validate.float_variable(is_float(v.dtype), dtype_name(v.dtype), name)
            g_shape, v_shape = shapes(g, v) if shapes else (g.shape, v.shape)
            _validate.gradient(g_shape, dtype_name(g.dtype), v_shape, dtype_name(v.dtype), name)

    # -- config ------------------------------------------------------------------------
    def _config_value(self, name):
        value = getattr(self, name)
        if isinstance(value, (numbers.Number, str)) or value is None:
            return value
        got = self._host.read_hyper(value)  # a tensor given: its value now
        return value if got is _validate.OTHER else got

    def _serialize_rate(self, value):
        """A rate for ``get_config``: a schedule serialized by the host, a plain callable as its
        value now (as OptimizerV2 saves a callable hyperparameter), a number as it is."""
        if self._host.is_schedule(value):
            return self._host.schedule_module.serialize(value)
        if callable(value):
            return self._as_float(value())
        return value

    @classmethod
    def _deserialize_rates(cls, config, custom_objects=None):
        """``config`` with its serialized schedules (``learning_rate``, ``weight_decay``) made
        again by the host, optcompat's own found by class name too (:func:`._schedules.custom_objects`)."""
        config, host = dict(config), cls._host
        for key in ("learning_rate", "weight_decay"):
            if isinstance(config.get(key), dict):
                found = _schedules.custom_objects(config[key], host.schedules, custom_objects)
                config[key] = host.schedule_module.deserialize(config[key], custom_objects=found)
        return config

    _FAMILY = None  # each adapter's family name

    # Other families' host arguments this family's host does not take: {key: whether a value
    # changes nothing here}.  A config another family wrote (its name resolves here: _names)
    # loads with them dropped; a value that would change something is kept, and the host
    # refuses it, naming it.
    _FOREIGN_ARGUMENTS = {}

    @classmethod
    def _portable_config(cls, config):
        return {k: v for k, v in config.items()
                if not (k in cls._FOREIGN_ARGUMENTS and cls._FOREIGN_ARGUMENTS[k](v, config))}

    def _warn_if_saving_drops_state(self):
        """Called from ``get_config``: where a save in a format whose files this release cannot
        resume an optimizer from is writing the config (its saving module is on the stack),
        say so, and what keeps the state (:func:`._detect.formats_dropping_state`)."""
        if self._FAMILY not in _DROPPED:
            _DROPPED[self._FAMILY] = _detect.formats_dropping_state(self._FAMILY)
        dropped = _DROPPED[self._FAMILY]
        frame, saving = (sys._getframe(2) if dropped else None), None
        while frame is not None:  # the outermost save function on the stack is the format
            code = frame.f_code
            where = code.co_filename.replace(os.sep, "/")
            saving = next((fmt for fmt, sites in _detect.SAVE_SITES.items()
                           if any(part in where and code.co_name == name for part, name in sites)), saving)
            frame = frame.f_back
        if saving in dropped:
            warnings.warn(
                "optcompat: %s saved as %s keeps no optimizer state this release can restore (the host's own "
                "optimizers lose it there too): a model loaded from it trains on from step 0 with empty slots. "
                "To resume, save as %s, or keep the state with optcompat.state.save(...)."
                % (type(self).__name__, {"h5": ".h5", "keras": ".keras", "savedmodel": "a SavedModel"}[saving],
                   dropped[saving]), UserWarning, stacklevel=3)

    def _decoupled_config(self):
        self._warn_if_saving_drops_state()
        config = {name: self._config_value(name) for name in self._kept}
        config.update(self._decay.config(), fast_path=self.fast_path, **self._decay.rates_config())
        return config
