"""keras-adamw's face (:mod:`optcompat.keras_adamw`): its arguments, defaults and attributes
over optcompat's classes.  Host-free; no math here: the step is the rule with
``convention="keras-adamw"`` (:mod:`._rule`), its multiplier ``eta_t`` the core's schedule
multiplier hook, its annealing :func:`._schedules.annealing_multiplier` /
:func:`._schedules.annealing_counter`, its decays ``weight_decays`` scaled by
:func:`._rule.normalized_weight_decay`.

keras-adamw keeps two variables of its own, and so do these classes: ``t_cur``, the position
in the annealing period, and ``eta_t``, the multiplier the next step uses.  Each step uses the
``eta_t`` it finds, then advances ``t_cur`` (back to 0 after ``total_iterations - 1`` with
``autorestart``) and, with ``use_cosine_annealing``, sets ``eta_t`` from it -- so
``K.set_value(opt.t_cur, ...)`` and ``K.set_value(opt.eta_t, ...)`` between steps act as in
keras-adamw, in compiled steps too.  As keras-adamw does, ``get_config`` gives their values now
(a model file keeps them there), and the optimizer's weights stay the host's own Adam / SGD's.
"""

import warnings

from . import _detect
from . import _faces
from . import _names
from . import _rule
from . import _schedules
from . import _validate
from ._penalties import weight_decays_from
from ._rule import normalized_weight_decay

_MADE = {}  # family -> {name: class}

# the face's own arguments (keras-adamw's), given back by get_config
_OWN = (
    "total_iterations",
    "total_iterations_wd",
    "use_cosine_annealing",
    "autorestart",
    "eta_min",
    "eta_max",
    "init_verbose",
    "zero_penalties",
)


def _count(name, value, low=0):
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        and not (isinstance(value, float) and value.is_integer())
    ):
        raise _validate.ArgumentTypeError(
            "`%s` must be an int >= %d; received %r." % (name, low, value)
        )
    if value < low:
        raise ValueError("`%s` must be an int >= %d; received %r." % (name, low, value))
    return int(value)


def _pair(name, value):
    """keras-adamw's ``(l1, l2)`` (a bare number: ``l2``), each a float >= 0."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(
                "`weight_decays[%r]` must be l2 or (l1, l2); received %r."
                % (name, value)
            )
        return tuple(_validate.at_least("weight_decays[%r]" % name, v) for v in value)
    return (0.0, _validate.at_least("weight_decays[%r]" % name, value))


def read_weight_decays(model, zero_penalties, call, stacklevel=3):
    """keras-adamw 1.38's ``get_weight_decays(model, zero_penalties)``: with ``zero_penalties`` it
    zeroes each regularizer *before* reading it, so it finds no decay at all.  Kept, so that a
    changed import keeps keras-adamw's numbers, and said: what the penalties were, and how to
    have them as decays (:func:`optcompat.weight_decays_from` reads, then zeroes).
    ``stacklevel``: the warning's, as :func:`warnings.warn` counts (3: the caller's caller)."""
    found = weight_decays_from(model, zero_penalties=zero_penalties)
    if not zero_penalties:
        return found
    if found:
        warnings.warn(
            "optcompat.keras_adamw: %s zeroes the model's L1/L2 penalties and, as "
            "keras-adamw 1.38 does, reads them after zeroing: no weight decay at all "
            "(keras-adamw's numbers kept). The penalties were %r; to decay them, give "
            "weight_decays=optcompat.weight_decays_from(model) (it reads, then zeroes) "
            "before compile." % (call, found),
            UserWarning,
            stacklevel=stacklevel,
        )
    return {}


def settings(given, takes_decay):
    """keras-adamw's arguments (``given``: a face's ``__init__`` arguments by name, ``kwargs``
    the host's others) checked and mapped onto optcompat's: ``(learning_rate, decays, own,
    t_cur, eta_t)``, with ``decays`` the normalized ``weight_decays`` and ``own`` what the
    optimizer keeps of keras-adamw's (:data:`_OWN`, the raw ``weight_decays``).  ``kwargs`` is
    left with the host's arguments, ``convention="keras-adamw"`` and ``weight_decay=0.0``
    by default (``takes_decay``: OptimizerV2 takes ``decay``)."""
    kwargs = given["kwargs"]
    eta_t = _validate.at_least("eta_t", kwargs.pop("eta_t", 1.0))
    # keras-adamw's alias `lr` (its tests and README use it)
    learning_rate = kwargs.pop("lr") if "lr" in kwargs else given["learning_rate"]
    total_iterations = _count("total_iterations", given["total_iterations"])
    total_iterations_wd = given["total_iterations_wd"]
    if total_iterations_wd is not None:
        total_iterations_wd = _count("total_iterations_wd", total_iterations_wd, 1)
    annealing = _annealing(given)
    raw = _given_decays(given, total_iterations, annealing["zero_penalties"])
    if (annealing["use_cosine_annealing"] or raw) and total_iterations <= 1:
        warnings.warn(
            "optcompat.keras_adamw: total_iterations=%d; it must be > 1 for cosine "
            "annealing and weight decays: proceeding without either (as "
            "keras-adamw does)." % total_iterations,
            UserWarning,
            stacklevel=4,
        )
        annealing.update(use_cosine_annealing=False, autorestart=False)
        raw = {}
    wd_steps = total_iterations_wd or total_iterations
    # keras-adamw's normalization, lambda = l * sqrt(1 / total_iterations_wd)
    decays = {
        k: tuple(normalized_weight_decay(v, wd_steps) for v in pair)
        for k, pair in raw.items()
    }
    kwargs.setdefault("convention", "keras-adamw")
    # keras-adamw decays only what weight_decays names
    kwargs.setdefault("weight_decay", 0.0)
    if "decay" in kwargs and not takes_decay:  # OptimizerV2's time-inverse decay
        if kwargs.pop("decay"):
            raise ValueError(
                "`decay` (the time-inverse learning-rate decay) exists in OptimizerV2 only "
                "(optcompat.keras_adamw.for_family('legacy')); here give learning_rate="
                "keras.optimizers.schedules.InverseTimeDecay(lr, 1, decay)."
            )
    own = dict(
        annealing,
        total_iterations=total_iterations,
        total_iterations_wd=wd_steps,
        init_verbose=_validate.boolean("init_verbose", given["init_verbose"]),
        _raw_weight_decays=raw,
    )
    t_cur = own.pop("t_cur")
    return learning_rate, decays or None, own, t_cur, eta_t


def _annealing(given):
    """keras-adamw's annealing arguments and ``zero_penalties``, checked in this order (a call
    with two bad ones is refused for the first): ``{use_cosine_annealing, zero_penalties,
    autorestart, eta_min, eta_max, t_cur}``; ``autorestart`` None follows
    ``use_cosine_annealing``."""
    use_cosine_annealing = _validate.boolean(
        "use_cosine_annealing", given["use_cosine_annealing"]
    )
    zero_penalties = _validate.boolean("zero_penalties", given["zero_penalties"])
    autorestart = given["autorestart"]
    if autorestart is None:
        autorestart = use_cosine_annealing
    autorestart = _validate.boolean("autorestart", autorestart)
    if autorestart and not use_cosine_annealing:
        raise ValueError(
            "`autorestart` can only be used with `use_cosine_annealing` (keras-adamw's rule); "
            "received autorestart=True, use_cosine_annealing=False."
        )
    return dict(
        use_cosine_annealing=use_cosine_annealing,
        zero_penalties=zero_penalties,
        autorestart=autorestart,
        eta_min=_validate.at_least("eta_min", given["eta_min"]),
        eta_max=_validate.at_least("eta_max", given["eta_max"]),
        t_cur=_count("t_cur", given["t_cur"]),
    )


def _given_decays(given, total_iterations, zero_penalties):
    """keras-adamw's ``{variable name: (l1, l2)}`` before its normalization: ``weight_decays``
    checked, or where ``model`` is given (and ``total_iterations > 1``) read from its
    regularizers (:func:`read_weight_decays`)."""
    weight_decays, model = given["weight_decays"], given["model"]
    if weight_decays is not None and not isinstance(weight_decays, dict):
        raise _validate.ArgumentTypeError(
            "`weight_decays` must be None or a dict {variable name: l2 or "
            "(l1, l2)}; received %r." % (weight_decays,)
        )
    raw = {str(k): _pair(k, v) for k, v in (weight_decays or {}).items()}
    if total_iterations > 1 and model is not None:
        # keras-adamw reads (and zeroes) the penalties then
        if weight_decays is not None:
            warnings.warn(
                "optcompat.keras_adamw: `weight_decays` is read from `model`'s "
                "regularizers when `model` is given; the `weight_decays` given are "
                "ignored (as in keras-adamw).",
                UserWarning,
                stacklevel=5,
            )
        # the user's frame: above __init__, _keras_adamw and settings
        raw = read_weight_decays(
            model, zero_penalties, "AdamW(model=..., zero_penalties=True)", stacklevel=6
        )
    return raw


class KerasAdamW(object):
    """The mixin placed first in a class (before optcompat's AdamW / SGDW / decoupled Nadam of a
    family): ``_keras_adamw(...)`` maps keras-adamw's arguments onto optcompat's, then builds."""

    @staticmethod
    def _wrote(config):
        """Whether a config saved under a bare name (TF 1.15-2.1) is keras-adamw's."""
        return "total_iterations" in config

    def _keras_adamw(self, given):
        """Build from a face's ``__init__`` arguments by name (``locals()``)."""
        learning_rate, decays, own, t_cur, eta_t = settings(given, self._TAKES_DECAY)
        self._keras_adamw_init(
            learning_rate, given["lr_multipliers"], decays, given["kwargs"]
        )
        self.__dict__.update(own, _init_notified=False)
        self._host.hold(
            self, "t_cur", self._host.scalar_variable(self, "t_cur", float(t_cur))
        )
        self._host.hold(self, "eta_t", self._host.scalar_variable(self, "eta_t", eta_t))

    # OptimizerV2 takes `decay` (its time-inverse learning-rate decay)
    _TAKES_DECAY = False

    def _keras_adamw_init(self, learning_rate, lr_multipliers, weight_decays, kwargs):
        if (
            "gradient_accumulation_steps" in kwargs
            and kwargs["gradient_accumulation_steps"]
        ):
            raise ValueError(
                "optcompat.keras_adamw takes no `gradient_accumulation_steps`: keras-adamw's t_cur "
                "counts steps (use optcompat.AdamW with optcompat.schedules.CosineAnnealing)."
            )
        super(KerasAdamW, self).__init__(
            learning_rate=learning_rate,
            lr_multipliers=lr_multipliers,
            weight_decays=weight_decays,
            **kwargs,
        )

    @property
    def weights(self):
        """keras-adamw's ``optimizer.weights`` (OptimizerV2's: its variables, for
        ``K.batch_get_value``); where the host's optimizers have no ``weights`` (Keras 3, Keras 2's
        new ones) it is their ``variables``."""
        try:
            return super(KerasAdamW, self).weights
        except AttributeError:
            variables = self.variables
            return list(variables() if callable(variables) else variables)

    @property
    def lr_multipliers(self):
        """keras-adamw's ``{pattern: factor}`` (None: none)."""
        return dict(self._decay.multipliers) or None

    @property
    def weight_decays(self):
        """keras-adamw's ``{variable name: (l1, l2)}`` as given or read from ``model`` (the
        steps use them times ``sqrt(1 / total_iterations_wd)``)."""
        return dict(self.__dict__.get("_raw_weight_decays", {}))

    @property
    def lr_t(self):
        """keras-adamw's ``lr_t`` for plots: the learning rate times ``eta_t`` now (keras-adamw's
        is the last variable's, after Adam's bias correction and its multiplier)."""
        rate = self.learning_rate
        if callable(rate) and not hasattr(rate, "dtype"):  # a schedule: at this step
            rate = rate(self.iterations)
        return self._host.xp.cast(rate, "float32") * self._host.xp.cast(
            self._host.value_of(self.eta_t), "float32"
        )

    # -- the step ------------------------------------------------------------------------------
    def _schedule_multiplier(self, dtype):
        return self._host.xp.cast(self._host.value_of(self.eta_t), dtype)

    def _after_step(self):
        return _advance(self)

    def _check_names(self, var_list):
        super(KerasAdamW, self)._check_names(var_list)
        _print_rates(self, var_list)

    # -- config --------------------------------------------------------------------------------
    def get_config(self):
        """The host's config, keras-adamw's arguments (``weight_decays`` as given, before the
        normalization), and ``t_cur`` / ``eta_t`` as they are now (as keras-adamw saves them)."""
        return _config(self, super(KerasAdamW, self).get_config())


def _advance(optimizer):
    """keras-adamw's order: the step used ``eta_t``; then ``t_cur`` advances and, with
    annealing, ``eta_t`` is set from it (:func:`._schedules.annealing_counter`)."""
    xp, total = optimizer._host.xp, float(optimizer.total_iterations)
    t_next = _schedules.annealing_counter(
        xp,
        xp.cast(optimizer._host.value_of(optimizer.t_cur), "float32"),
        total,
        optimizer.autorestart,
    )
    done = [optimizer._host.assign(optimizer, optimizer.t_cur, t_next)]
    if optimizer.use_cosine_annealing:
        done.append(
            optimizer._host.assign(
                optimizer,
                optimizer.eta_t,
                _schedules.annealing_multiplier(
                    xp, t_next, total, optimizer.eta_min, optimizer.eta_max
                ),
            )
        )
    return [op for op in done if op is not None]


def _print_rates(optimizer, var_list):
    """keras-adamw's printout of the variables' own rates, once."""
    if optimizer.init_verbose and not optimizer._init_notified:
        optimizer.__dict__["_init_notified"] = True
        for variable in var_list:
            own = optimizer._own_rates_of(variable)
            if own is not None:
                factor, decays = own
                print(
                    "optcompat.keras_adamw: %s: lr multiplier %g, weight decay %s "
                    "(l1, l2; normalized)"
                    % (
                        optimizer._host.display_name(variable),
                        factor,
                        "none" if decays is None else tuple(decays),
                    )
                )


def _config(optimizer, config):
    """``config`` (the host's) with what :meth:`KerasAdamW.get_config` adds."""
    config.update({name: getattr(optimizer, name) for name in _OWN})
    t_cur, eta_t = (
        optimizer._host.concrete(v) for v in (optimizer.t_cur, optimizer.eta_t)
    )
    config.update(
        weight_decays={k: list(v) for k, v in optimizer._raw_weight_decays.items()}
        or None,
        lr_multipliers=optimizer.lr_multipliers,
        t_cur=None if t_cur is None else int(round(t_cur)),
        eta_t=eta_t,
    )
    if config["total_iterations_wd"] == config["total_iterations"]:
        config["total_iterations_wd"] = None
    for key in ("t_cur", "eta_t"):
        if config[key] is None:
            config.pop(key)
    return config


class _AdamWFace(KerasAdamW):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=None,
                 decay=0.0, amsgrad=False, model=None, zero_penalties=True,
                 total_iterations=0, total_iterations_wd=None,
                 use_cosine_annealing=False, lr_multipliers=None, weight_decays=None,
                 autorestart=None, init_verbose=True, eta_min=0, eta_max=1, t_cur=0,
                 name="AdamW", **kwargs):  # fmt: skip
        kwargs.update(
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=1e-7 if epsilon is None else epsilon,
            amsgrad=amsgrad,
            decay=decay,
            name=name,
        )
        self._keras_adamw(locals())


class _SGDWFace(KerasAdamW):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, model=None,
                 zero_penalties=True, total_iterations=0, total_iterations_wd=None,
                 use_cosine_annealing=False, lr_multipliers=None, weight_decays=None,
                 autorestart=None, init_verbose=True, eta_min=0, eta_max=1, t_cur=0,
                 name="SGDW", **kwargs):  # fmt: skip
        kwargs.update(momentum=momentum, nesterov=nesterov, name=name)
        kwargs.setdefault("decay", 0.0)
        self._keras_adamw(locals())


class _NadamWFace(KerasAdamW):
    """keras-adamw's NadamW: the host's own Nadam step (:func:`optcompat.decoupled`), its rate
    times ``eta_t`` and a variable's multiplier, and keras-adamw's decays before it."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 model=None, zero_penalties=True, total_iterations=0,
                 total_iterations_wd=None, use_cosine_annealing=False,
                 lr_multipliers=None, weight_decays=None, autorestart=None,
                 init_verbose=True, eta_min=0, eta_max=1, t_cur=0, name="NadamW",
                 **kwargs):  # fmt: skip
        kwargs.update(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name)
        self._keras_adamw(locals())

    def _keras_adamw_init(self, learning_rate, lr_multipliers, weight_decays, kwargs):
        multipliers = _validate.lr_multipliers(lr_multipliers)
        decays = _validate.weight_decays(weight_decays)
        for key in ("strict_names", "fast_path"):  # (AdamW's arguments, in its config)
            kwargs.pop(key, None)
        super(KerasAdamW, self).__init__(learning_rate=learning_rate, **kwargs)
        self._decay.own_rates_from(multipliers, decays)

    def _own(self, variable):
        """``(factor, (l1, l2) or None)``: ``variable``'s multiplier and decays, as AdamW finds
        them (:meth:`._decay.Decay.own_rates`)."""
        return self._own_rates_of(variable) or (1.0, None)

    def _rate_scale(self):
        return self._host.value_of(self.eta_t)

    def _rate_factor(self, variable):
        return self._own(variable)[0]

    def _decay_off(self):
        return not self._decay.decays

    def _decays(self, variable):
        return self._own(variable)[1] is not None and super(_NadamWFace, self)._decays(
            variable
        )

    def _decayed_value(self, xp, variable, lr, weight_decay):
        """``x - eta_t l2 x - eta_t l1 sign(x)`` (:mod:`._rule`; keras-adamw's decay of NadamW)."""
        l1, l2 = self._own(variable)[1]
        x = self._host.value_of(variable)
        eta = xp.cast(self._host.value_of(self.eta_t), variable.dtype)
        decay = _rule.decay_coefficient(
            self.convention, xp.cast(l2, variable.dtype), lr, None, eta
        )
        shrink = _rule.shrinkage(
            xp,
            x,
            _rule.decay_coefficient(self.convention, l1, lr, None, eta) if l1 else None,
        )
        return _rule.decayed(self.convention, x, decay, shrink)


def classes(family):
    """keras-adamw's ``AdamW`` and ``SGDW`` on ``family``, registered as
    ``optcompat.keras_adamw.<family>>AdamW`` (keras-adamw registered none: its files name the
    class in ``custom_objects``, which finds these as well)."""
    if family not in _MADE:
        module = _faces.family_module(family)
        keras = module.keras
        register = _names.registrar(keras, "optcompat.keras_adamw." + family)
        made = {}
        nadam = module.decoupled(_detect.host_class(family, "Nadam"))
        for name, face, base in (
            ("AdamW", _AdamWFace, module.AdamW),
            ("SGDW", _SGDWFace, module.SGDW),
            ("NadamW", _NadamWFace, nadam),
        ):
            doc = (
                "keras-adamw's ``%s`` (``optcompat.keras_adamw``): ``%s%s``; "
                '``convention="keras-adamw"``. The rule, the other arguments and the '
                "family: %s.%s.\n\n%s"
                % (
                    name,
                    name,
                    _faces.signature(face),
                    base.__module__,
                    base.__name__,
                    __doc__,
                )
            )
            body = {
                "__module__": __package__ + ".keras_adamw",
                "__qualname__": name,
                "__doc__": doc,
                "_TAKES_DECAY": family == "legacy",
            }
            made[name] = register(type(name, (face, base), body))
        _MADE[family] = made
    return _MADE[family]


def register_peer_names(family):
    """keras-adamw registered no names: a model file saved with it names the bare class
    (``"class_name": "AdamW"``), and loading it took ``custom_objects``.  In OptimizerV2, the
    family of keras-adamw's ``tf.keras`` classes, these classes are registered under those bare
    names too -- each one the host's Keras has no optimizer of (``AdamW`` up to TF 2.10;
    ``NadamW``, ``SGDW``) and no custom object takes already -- so such a file loads as it is."""
    if family != "legacy":
        return
    keras = _faces.family_module(family).keras
    custom = _names.custom_objects(keras)
    for name, cls in classes(family).items():
        if name not in custom and getattr(keras.optimizers, name, None) is None:
            custom[name] = cls


def default_family():
    """keras-adamw's ``TF_KERAS=1`` classes were OptimizerV2: that family where the user's Keras
    has it as its default or next to Keras 2, else the default family."""
    return _faces.peer_family()
