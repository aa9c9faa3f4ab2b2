r"""Learning-rate schedules written once: the formulas over an array namespace ``xp``, and the
declarations that every family's schedule classes are made of (:func:`make`).

The schedules moved between releases (``tf.keras.experimental.CosineDecay`` in TF 2.2,
``tf.keras.optimizers.schedules`` later, warm-up only from TF 2.13 / Keras 3) and their float32
arithmetic differs; these give the same numbers on every release, from TF 1.15 to Keras 3 on
every backend.  ``xp`` provides ``cast``, ``cos``, ``floor``, ``log``, ``minimum``, ``power``
and ``where`` (``keras.ops``, the TensorFlow namespace of :mod:`._tf`, or NumPy in the tests).
Every formula takes ``step``, the optimizer's 0-based ``iterations`` (the steps already
taken), as a float tensor, and computes in float32 as Keras's schedules do.

A declaration keeps the arguments it was given (``get_config`` gives them back as given) and
checks them before anything is built.  ``base_learning_rate`` is the rate that ``eta_t =
lr_t / base_learning_rate`` is measured against, where a convention scales the decay by the
schedule multiplier (``paper``, ``keras-adamw``).
"""

import math
import numbers
import textwrap

from . import _names
from . import _validate

_PI = math.pi


def _cosine(xp, fraction, alpha, scale=1.0):
    """``(1 - alpha) * scale * (1 + cos(pi * fraction)) / 2 + alpha``."""
    return (1.0 - alpha) * (0.5 * scale * (1.0 + xp.cos(_PI * fraction))) + alpha


def cosine_decay(
    xp, step, initial, decay_steps, alpha, warmup_target=None, warmup_steps=0
):
    r"""Cosine decay (Keras's `CosineDecay`), with Keras 3's optional linear warm-up:

    $$
    \mathrm{lr}(s) = \mathrm{initial} \left( (1 - \alpha) \, \frac{1 + \cos(\pi \min(s, S) / S)}{2}
      + \alpha \right)
    $$

    with $S$ = `decay_steps` and $\alpha$ = `alpha`.  With `warmup_target` and $W$ =
    `warmup_steps`: the rate rises linearly, $\mathrm{initial} + (\mathrm{warmup\_target} -
    \mathrm{initial}) \, s / W$ for $s < W$, then decays as above from `warmup_target` over
    $s - W$.
    """
    if warmup_target is None:
        return initial * _cosine(xp, xp.minimum(step, decay_steps) / decay_steps, alpha)
    decayed = warmup_target * _cosine(
        xp,
        xp.minimum(xp.maximum(step - warmup_steps, 0.0), decay_steps) / decay_steps,
        alpha,
    )
    if not warmup_steps:
        return decayed
    warm = initial + (warmup_target - initial) * (step / warmup_steps)
    return xp.where(step < warmup_steps, warm, decayed)


def restart_index(xp, step, first, t_mul):
    r"""``(i, start_i, length_i)``: the period ``step`` is in, where it starts and how long it
    is, for periods ``first * t_mul^i``:

        start_i = first (t_mul^i - 1) / (t_mul - 1)      (first * i where t_mul = 1)

    The estimate ``floor(log(1 + s (t_mul - 1) / first) / log t_mul)`` can land one period off
    at a boundary in float32; it is corrected against the boundaries themselves, so a restart
    happens exactly at ``start_i``."""
    if t_mul == 1.0:
        i = xp.floor(step / first)

        def start(j):
            return first * j
    else:
        i = xp.floor(xp.log(1.0 + step * ((t_mul - 1.0) / first)) / math.log(t_mul))

        def start(j):
            return first * (xp.power(t_mul, j) - 1.0) / (t_mul - 1.0)

    below = xp.cast(step < start(i), "float32")
    i = i - below
    i = i + xp.cast(step >= start(i + 1.0), "float32")
    length = first if t_mul == 1.0 else first * xp.power(t_mul, i)
    return i, start(i), length


def cosine_decay_restarts(xp, step, initial, first_decay_steps, t_mul, m_mul, alpha):
    r"""Cosine decay with warm restarts (SGDR; Keras's `CosineDecayRestarts`): in period $i$,
    which starts at step $\mathrm{start}_i = F (t_\mathrm{mul}^i - 1) / (t_\mathrm{mul} - 1)$ ($F i$
    where $t_\mathrm{mul} = 1$; $F$ = `first_decay_steps`) and lasts $F \, t_\mathrm{mul}^i$
    steps, with $f$ the fraction of the period done,

    $$
    \mathrm{lr}(s) = \mathrm{initial} \left( (1 - \alpha) \, m_\mathrm{mul}^i \,
      \frac{1 + \cos(\pi f)}{2} + \alpha \right)
    $$

    A restart happens exactly at $\mathrm{start}_i$ (Keras's own estimates $i$ with a float32
    logarithm, which can land one period off at a boundary).
    """
    i, start, length = restart_index(xp, step, first_decay_steps, t_mul)
    return initial * _cosine(xp, (step - start) / length, alpha, xp.power(m_mul, i))


def warmup(xp, step, initial, warmup_steps, target, after):
    r"""Linear warm-up in front of a schedule: $\mathrm{initial} + (\mathrm{target} -
    \mathrm{initial}) \, s / W$ for $s < W$ ($W$ = `warmup_steps`), then
    $\mathrm{schedule}(s - W)$, the target being the schedule's value at its step 0.
    """
    later = after(xp.maximum(step - warmup_steps, 0.0))
    if not warmup_steps:
        return later
    return xp.where(
        step < warmup_steps, initial + (target - initial) * (step / warmup_steps), later
    )


def cosine_annealing(
    xp,
    step,
    learning_rate,
    total_iterations,
    eta_min,
    eta_max,
    t_cur,
    autorestart,
    eta_t,
):
    r"""keras-adamw's cosine annealing (`use_cosine_annealing=True`):

    $$
    \mathrm{lr}(s) = \mathrm{learning\_rate} \cdot \eta(s), \qquad
    \eta(s) = \eta_\mathrm{min} + (\eta_\mathrm{max} - \eta_\mathrm{min})
      \frac{1 + \cos(\pi c_s / (T - 1))}{2} \quad (s \ge 1), \qquad \eta(0) = \eta_t
    $$

    with $T$ = `total_iterations` and $c_s$ keras-adamw's `t_cur` after $s$ steps: it starts at
    `t_cur` and is advanced after each step's update, so step $s$ uses the value computed at
    the end of step $s - 1$; with `autorestart` it goes back to 0 after $T - 1$
    ($c_s = (t_\mathrm{cur} + s) \bmod T$: a restart every $T$ steps), without it keeps
    counting (the cosine rises again after $T - 1$).
    """
    c = step + float(t_cur)
    if autorestart:
        c = c - total_iterations * xp.floor(c / total_iterations)
        # float32 rounding of the quotient
        c = xp.where(c < 0.0, c + total_iterations, c)
        c = xp.where(c >= total_iterations, c - total_iterations, c)
    eta = annealing_multiplier(xp, c, total_iterations, eta_min, eta_max)
    return learning_rate * xp.where(step < 0.5, eta_t + 0.0 * eta, eta)


def annealing_multiplier(xp, t_cur, total_iterations, eta_min, eta_max):
    r"""keras-adamw's multiplier at its counter ``t_cur`` (``T = total_iterations``):

    eta = eta_min + (eta_max - eta_min) (1 + cos(pi t_cur / (T - 1))) / 2
    """
    return eta_min + 0.5 * (eta_max - eta_min) * (
        1.0 + xp.cos(_PI * (t_cur / (total_iterations - 1.0)))
    )


def annealing_counter(xp, t_cur, total_iterations, autorestart):
    r"""keras-adamw's ``t_cur`` after a step: ``t_cur + 1``, or with ``autorestart`` 0 where
    ``t_cur = T - 1`` (its test is equality: a counter set past ``T - 1`` keeps counting).
    ``t_cur`` is a float tensor holding an integer (compared by halves, so the test needs no
    tensor equality)."""
    t_next = t_cur + 1.0
    if not autorestart:
        return t_next
    last = (t_cur > total_iterations - 1.5) & (t_cur < total_iterations - 0.5)
    return xp.where(last, 0.0 * t_cur, t_next)


# -- declarations ------------------------------------------------------------------------------


def _rate(name, value):
    return _validate.at_least(name, value)


def _steps(name, value, low=1):
    """A step count: an int >= ``low`` (a float with an integral value is taken)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or value != int(value)
    ):
        raise _validate.ArgumentTypeError(
            "`%s` must be an integer >= %d; received %r (type %s)."
            % (name, low, value, type(value).__name__)
        )
    if value < low:
        raise ValueError(
            "`%s` must be an integer >= %d; received %r." % (name, low, value)
        )
    return int(value)


def _positive(name, value):
    value = _validate.at_least(name, value)
    if value <= 0:
        raise ValueError("`%s` must be > 0; received %r." % (name, value))
    return value


def _fraction(name, value):
    value = _validate.at_least(name, value)
    if value > 1:
        raise ValueError("`%s` must be in [0, 1]; received %r." % (name, value))
    return value


class Schedule(object):
    """What every optcompat schedule declares: ``ARGS`` (its signature's names), ``_check``
    (the given arguments, checked) and ``value(xp, step)``."""

    ARGS = ()
    # optcompat's, whichever family made the class (see adopt)
    _optcompat_schedule = True

    def __init__(self, *args, **kwargs):
        given = dict(zip(self.ARGS, args))
        overlap = set(given) & set(kwargs)
        if overlap:
            raise TypeError(
                "%s got multiple values for %s" % (type(self).__name__, sorted(overlap))
            )
        given.update(kwargs)
        unknown = set(given) - set(self.ARGS) - {"name"}
        if unknown:
            raise TypeError(
                "%s got unexpected arguments %s; it takes %s"
                % (
                    type(self).__name__,
                    sorted(unknown),
                    ", ".join(self.ARGS + ("name",)),
                )
            )
        self.name = given.pop("name", None) or type(self).__name__
        self._given = given
        for key, value in self._check(dict(self.DEFAULTS, **given)).items():
            setattr(self, key, value)
        super(Schedule, self).__init__()

    DEFAULTS = {}

    def _check(self, args):
        return args

    def __call__(self, step):
        xp = self.xp
        return self.value(xp, xp.cast(step, "float32"))

    def get_config(self):
        config = {key: getattr(self, key) for key in self.ARGS}
        config["name"] = self.name
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Rule(Schedule):
    """A schedule that is one formula of this module, ``RULE(xp, step, *args)`` over its
    checked arguments in ``ARGS`` order (step counts as floats), with the rate ``eta_t`` is
    measured against, ``base_learning_rate``: the first of ``BASE`` that is not None."""

    RULE = None
    BASE = ("initial_learning_rate",)

    @property
    def base_learning_rate(self):
        return next(
            getattr(self, key) for key in self.BASE if getattr(self, key) is not None
        )

    def base_rate(self, initial_rate):
        """The rate ``eta_t`` is measured against, as a float (``initial_rate(schedule)``
        evaluates another schedule at its step 0; :class:`WarmUp` uses it)."""
        return self.base_learning_rate

    def value(self, xp, step):
        args = (getattr(self, key) for key in self.ARGS)
        return self.RULE(xp, step, *(_as_float(value) for value in args))


def _as_float(value):
    """An int argument (a step count) as the float the formulas take; others as they are."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _inline(doc):
    """A function's docstring as a paragraph of a class docstring, indented by 4 as the class
    docstring's own lines are (Python 3.13 strips a docstring's indentation, 3.6-3.12 keep it)."""
    first, _, rest = doc.strip().partition("\n")
    return (first + "\n" + textwrap.indent(textwrap.dedent(rest), "    ")).rstrip()


# the end of Args and the Raises of the schedules whose arguments are numbers only
_NAME_AND_RAISES = """\
        name: the schedule's name.

    Raises:
        ValueError: an argument out of its range, named in the message.
        TypeError: an argument of the wrong type, or one it does not take.\
"""


class CosineDecay(_Rule):
    __doc__ = r"""Cosine decay, Keras 3's signature (warm-up included) on every release.

    %s

    Its `base_learning_rate` (what $\eta_t = \mathrm{lr}_t / \mathrm{lr}_0$ is measured against,
    for `convention="paper"` / `"keras-adamw"`) is `warmup_target` where given, else
    `initial_learning_rate`.

    Args:
        initial_learning_rate: float >= 0, the rate at step 0.
        decay_steps: int >= 1, the steps over which it decays (then it stays at
            `alpha * initial_learning_rate`).
        alpha: in [0, 1], the floor as a fraction of the decayed-from rate.
        warmup_target: None, or a float >= 0: first rise linearly to it over
            `warmup_steps`, then decay from it.
        warmup_steps: int >= 0.
%s

    Example:
        ```python
        from optcompat import AdamW
        from optcompat.schedules import CosineDecay

        schedule = CosineDecay(1e-3, decay_steps=1000, warmup_target=1e-2, warmup_steps=100)
        model.compile(optimizer=AdamW(learning_rate=schedule, weight_decay=1e-4), loss="mse")
        ```
""" % (_inline(cosine_decay.__doc__), _NAME_AND_RAISES)

    RULE = staticmethod(cosine_decay)
    BASE = ("warmup_target", "initial_learning_rate")
    ARGS = (
        "initial_learning_rate",
        "decay_steps",
        "alpha",
        "warmup_target",
        "warmup_steps",
    )
    DEFAULTS = {"alpha": 0.0, "warmup_target": None, "warmup_steps": 0}

    def _check(self, a):
        return {
            "initial_learning_rate": _rate(
                "initial_learning_rate", a["initial_learning_rate"]
            ),
            "decay_steps": _steps("decay_steps", a["decay_steps"]),
            "alpha": _fraction("alpha", a["alpha"]),
            "warmup_target": None
            if a["warmup_target"] is None
            else _rate("warmup_target", a["warmup_target"]),
            "warmup_steps": _steps("warmup_steps", a["warmup_steps"], 0),
        }


class CosineDecayRestarts(_Rule):
    __doc__ = r"""Cosine decay with warm restarts (SGDR), Keras's semantics on every release.

    %s

    `torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)` is
    `CosineDecayRestarts(lr, T_0, t_mul=T_mult, m_mul=1.0, alpha=eta_min / lr)`.

    Args:
        initial_learning_rate: float >= 0, the rate at step 0.
        first_decay_steps: int >= 1, the first period's length.
        t_mul: float >= 1, each period is `t_mul` times the one before.
        m_mul: float >= 0, each period starts at `m_mul` times the one before's start.
        alpha: in [0, 1], the floor as a fraction of `initial_learning_rate`.
%s

    Example:
        ```python
        from optcompat import SGDW
        from optcompat.schedules import CosineDecayRestarts

        schedule = CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=2.0)
        model.compile(optimizer=SGDW(learning_rate=schedule, momentum=0.9), loss="mse")
        ```
""" % (_inline(cosine_decay_restarts.__doc__), _NAME_AND_RAISES)

    RULE = staticmethod(cosine_decay_restarts)
    ARGS = ("initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha")
    DEFAULTS = {"t_mul": 2.0, "m_mul": 1.0, "alpha": 0.0}

    def _check(self, a):
        # t_mul < 1: the periods run out
        t_mul = _validate.at_least("t_mul", a["t_mul"], 1.0)
        return {
            "initial_learning_rate": _rate(
                "initial_learning_rate", a["initial_learning_rate"]
            ),
            "first_decay_steps": _steps("first_decay_steps", a["first_decay_steps"]),
            "t_mul": t_mul,
            "m_mul": _rate("m_mul", a["m_mul"]),
            "alpha": _fraction("alpha", a["alpha"]),
        }


class WarmUp(Schedule):
    __doc__ = r"""Linear warm-up in front of any schedule (or a constant rate).

    %s

    Its `base_learning_rate` is the schedule's (its value at its step 0).

    Args:
        schedule: a float >= 0, or a `LearningRateSchedule` (optcompat's or the host's),
            started after the warm-up: at step `s >= warmup_steps` the rate is
            `schedule(s - warmup_steps)`.
        warmup_steps: int >= 0.
        initial_learning_rate: float >= 0, the rate at step 0 (default 0).
        name: the schedule's name.

    Raises:
        ValueError: an argument out of its range, named in the message.
        TypeError: an argument of the wrong type (a callable that is no schedule of this
            Keras), or one it does not take.

    Example:
        ```python
        from optcompat import AdamW
        from optcompat.schedules import CosineDecay, WarmUp

        schedule = WarmUp(CosineDecay(1e-3, decay_steps=1000), warmup_steps=100)
        model.compile(optimizer=AdamW(learning_rate=schedule), loss="mse")
        ```
""" % _inline(warmup.__doc__)

    ARGS = ("schedule", "warmup_steps", "initial_learning_rate")
    DEFAULTS = {"initial_learning_rate": 0.0}

    def _check(self, a):
        schedule = a["schedule"]
        if isinstance(schedule, dict):  # a serialized schedule (from_config)
            schedule = self._deserialize(
                schedule, custom_objects=custom_objects(schedule, self._classes)
            )
        if not self._is_schedule(schedule):
            if callable(schedule) and not isinstance(schedule, numbers.Number):
                raise _validate.ArgumentTypeError(
                    "`schedule` must be a float >= 0 or a LearningRateSchedule of this Keras (%s); "
                    "received %r." % (self._host_name, schedule)
                )
            schedule = _rate("schedule", schedule)
        return {
            "schedule": schedule,
            "warmup_steps": _steps("warmup_steps", a["warmup_steps"], 0),
            "initial_learning_rate": _rate(
                "initial_learning_rate", a["initial_learning_rate"]
            ),
        }

    def get_config(self):
        config = super(WarmUp, self).get_config()
        if not isinstance(self.schedule, float):
            config["schedule"] = self._serialize(self.schedule)
        return config

    def base_rate(self, initial_rate):
        if isinstance(self.schedule, float):
            return self.schedule
        inner = getattr(self.schedule, "base_rate", None)
        return inner(initial_rate) if inner is not None else initial_rate(self.schedule)

    def value(self, xp, step):
        schedule = self.schedule
        if isinstance(schedule, float):
            return warmup(
                xp,
                step,
                self.initial_learning_rate,
                float(self.warmup_steps),
                schedule,
                lambda s: schedule + 0.0 * s,
            )
        target = xp.cast(schedule(0.0 * step), "float32")
        return warmup(
            xp,
            step,
            self.initial_learning_rate,
            float(self.warmup_steps),
            target,
            lambda s: xp.cast(schedule(s), "float32"),
        )


class CosineAnnealing(_Rule):
    __doc__ = r"""keras-adamw's cosine annealing with warm restarts, as a learning-rate schedule.

    %s

    keras-adamw's `AdamW(lr, use_cosine_annealing=True, total_iterations=T, eta_min=a,
    eta_max=b, autorestart=True)` is `AdamW(CosineAnnealing(lr, T, eta_min=a, eta_max=b),
    convention="keras-adamw")`: the multiplier $\eta$ scales the decay too (its
    `base_learning_rate` is `learning_rate`, so $\mathrm{lr}_t / \mathrm{lr}_0 = \eta$).

    Args:
        learning_rate: float >= 0, the rate $\eta$ multiplies.
        total_iterations: int >= 2, keras-adamw's `total_iterations` (the period $T$).
        eta_min: float >= 0, the multiplier's lower bound.
        eta_max: float >= 0, the multiplier's upper bound.
        t_cur: int in [0, T) with autorestart (else >= 0), keras-adamw's `t_cur` at step 0.
        autorestart: bool, restart every $T$ steps (keras-adamw's default with annealing).
        eta_t: float >= 0, the multiplier at step 0 (keras-adamw's initial `eta_t`, 1).
        name: the schedule's name.

    Raises:
        ValueError: an argument out of its range, named in the message (`t_cur` outside
            [0, T) with autorestart included).
        TypeError: an argument of the wrong type, or one it does not take.

    Example:
        ```python
        from optcompat import AdamW
        from optcompat.schedules import CosineAnnealing

        optimizer = AdamW(learning_rate=CosineAnnealing(1e-3, total_iterations=24),
                          weight_decay=1e-2, convention="keras-adamw")
        model.compile(optimizer=optimizer, loss="mse")
        ```
""" % _inline(cosine_annealing.__doc__)

    RULE = staticmethod(cosine_annealing)
    BASE = ("learning_rate",)
    ARGS = (
        "learning_rate",
        "total_iterations",
        "eta_min",
        "eta_max",
        "t_cur",
        "autorestart",
        "eta_t",
    )
    DEFAULTS = {
        "eta_min": 0.0,
        "eta_max": 1.0,
        "t_cur": 0,
        "autorestart": True,
        "eta_t": 1.0,
    }

    def _check(self, a):
        total = _steps("total_iterations", a["total_iterations"], 2)
        autorestart = _validate.boolean("autorestart", a["autorestart"])
        t_cur = _steps("t_cur", a["t_cur"], 0)
        if autorestart and t_cur >= total:
            raise ValueError(
                "`t_cur` must be in [0, total_iterations) = [0, %d) with autorestart; received %r."
                % (total, t_cur)
            )
        return {
            "learning_rate": _rate("learning_rate", a["learning_rate"]),
            "total_iterations": total,
            "eta_min": _rate("eta_min", a["eta_min"]),
            "eta_max": _rate("eta_max", a["eta_max"]),
            "t_cur": t_cur,
            "autorestart": autorestart,
            "eta_t": _rate("eta_t", a["eta_t"]),
        }


DECLARATIONS = (CosineDecay, CosineDecayRestarts, WarmUp, CosineAnnealing)
NAMES = tuple(d.__name__ for d in DECLARATIONS)

# (a vendored copy's own name)
_PUBLIC_MODULE = __name__.rsplit(".", 1)[0] + ".schedules"
_MADE = {}  # the host's schedule base class -> {name: class}: families sharing a Keras share them


def takes_step(schedule):
    """Whether ``schedule`` is called with the step (a LearningRateSchedule, as the host calls
    one), not with nothing (a plain callable)."""
    return hasattr(schedule, "get_config") and hasattr(schedule, "__call__")


def make(keras, xp, host_name):
    """The schedule classes of ``keras`` (its ``optimizers.schedules``:
    ``LearningRateSchedule``, ``serialize``, ``deserialize``), over ``xp``, registered with
    it as ``optcompat>Name`` (:func:`._names.registrar`); made once per host (legacy and
    keras2 share tf.keras's)."""
    schedules = keras.optimizers.schedules
    register = _names.registrar(keras, REGISTRY_PACKAGE)
    base = schedules.LearningRateSchedule
    if base in _MADE:
        return _MADE[base]
    made = {}
    hooks = {
        "xp": xp,
        "_host_name": host_name,
        "_classes": made,
        "_is_schedule": staticmethod(lambda value: isinstance(value, base)),
        "_serialize": staticmethod(
            lambda value: registered(value, schedules.serialize(value))
        ),
        "_deserialize": staticmethod(schedules.deserialize),
        "__module__": _PUBLIC_MODULE,
    }
    for declaration in DECLARATIONS:
        body = dict(
            hooks, __qualname__=declaration.__name__, __doc__=declaration.__doc__
        )
        made[declaration.__name__] = register(
            type(declaration.__name__, (declaration, base), body)
        )
    _MADE[base] = made
    return made


REGISTRY_PACKAGE = (
    "optcompat"  # the schedules' registered names: "optcompat>CosineDecay"
)


def registered(value, config):
    """``config`` (the host's serialization of ``value``) naming an optcompat schedule by its
    registered name where the host wrote its bare class name (TF 1.15-2.1's tf.keras, whose own
    ``CosineDecay`` would otherwise be what the file loads)."""
    if (
        getattr(value, "_optcompat_schedule", False)
        and isinstance(config, dict)
        and config.get("class_name") == type(value).__name__
        and "registered_name" not in config
    ):
        return dict(
            config, class_name="%s>%s" % (REGISTRY_PACKAGE, config["class_name"])
        )
    return config


def custom_objects(config, classes, given=None):
    """``given`` (a ``custom_objects`` dict) plus the optcompat class that ``config`` (a
    serialized schedule) names, under its bare class name.  Where a file is read the old way
    (``.h5`` in TF 2.13-2.15 and tf_keras) the host looks a schedule up by its class name only,
    and refuses a registered one; by name alone ``CosineDecay`` would also be the host's own."""
    registered = (
        str(config.get("registered_name") or "") if isinstance(config, dict) else ""
    )
    name = (
        config.get("class_name")
        if registered.startswith(REGISTRY_PACKAGE + ">")
        else None
    )
    if name not in classes:
        return given
    return dict(given or {}, **{name: classes[name]})


def adopt(value, classes):
    """``value`` as a schedule of the host whose classes are ``classes``: an optcompat
    schedule made for another host (``optcompat.schedules.X`` is the default family's) is made
    again from its arguments; anything else is returned as it is."""
    cls = (
        classes.get(type(value).__name__)
        if getattr(value, "_optcompat_schedule", False)
        else None
    )
    if cls is None or isinstance(value, cls):
        return value
    args = {key: adopt(getattr(value, key), classes) for key in value.ARGS}
    return cls(name=value.name, **args)
