"""Argument checks, in one place.

Every check runs before an optimizer creates anything, and every message names the
argument, the allowed range and what was received.  Host-free: adapters pass in what
only they can know (e.g. whether a learning rate is one of their schedules).
"""

import math
import numbers
import re

from ._conventions import CONVENTIONS


class ArgumentTypeError(TypeError, ValueError):
    """A bad argument's type: a ``TypeError`` that is also the ``ValueError`` Keras raises
    for the same mistake (``AdamW(weight_decay=None)``), so code written for either catches it."""


def _number(name, value, allowed):
    # bool is an int subclass: True as a learning rate is a bug, not 1.0.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            "`%s` must be a real number %s; received %r (type %s)."
            % (name, allowed, value, type(value).__name__)
        )
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(
            "`%s` must be a finite number %s; received %r." % (name, allowed, value)
        )
    return value


# what a family's ``read`` gives for a value that is no tensor (or callable) it takes
OTHER = object()


def host_value(name, value, check, read):
    """A hyperparameter that the host may take as a tensor (every family) or a callable
    (OptimizerV2's ``_set_hyper``): ``read(value)`` gives its value now (None where it is
    symbolic: it is checked where it is concrete), or :data:`OTHER`; a tensor or callable is
    kept as given, anything else is a number that ``check(name, value)`` checks."""
    if (
        read is not None
        and not isinstance(value, (numbers.Number, str))
        and value is not None
    ):
        got = read(value)
        if got is not OTHER:
            if got is not None:
                check(name, got)
            return value
    return check(name, value)


def at_least(name, value, low=0.0):
    allowed = "in [%g, inf)" % low
    value = _number(name, value, allowed)
    if value < low:
        raise ValueError("`%s` must be %s; received %r." % (name, allowed, value))
    return value


def in_unit_interval(name, value):
    """A value in [0, 1): Adam's betas, SGD's momentum."""
    allowed = "in [0, 1)"
    value = _number(name, value, allowed)
    if not 0.0 <= value < 1.0:
        raise ValueError("`%s` must be %s; received %r." % (name, allowed, value))
    return value


def optional_positive(name, value):
    """Clipping thresholds: None, or a number > 0."""
    if value is None:
        return None
    allowed = "> 0 (or None)"
    value = _number(name, value, allowed)
    if value <= 0:
        raise ValueError("`%s` must be %s; received %r." % (name, allowed, value))
    return value


def boolean(name, value):
    if not isinstance(value, bool):
        raise ArgumentTypeError(
            "`%s` must be a bool (True or False); received %r (type %s)."
            % (name, value, type(value).__name__)
        )
    return value


def convention(value):
    if not isinstance(value, str) or value not in CONVENTIONS:
        raise ValueError(
            "`convention` must be one of %s; received %r."
            % (", ".join(map(repr, CONVENTIONS)), value)
        )
    return value


def learning_rate(
    value, is_schedule, allow_callable=True, read=None, name="learning_rate"
):
    """A float >= 0, a host schedule, a tensor, or (where the host supports it) a callable."""
    if is_schedule(value):
        return value
    if callable(value) and not isinstance(value, numbers.Number):
        if allow_callable:
            return value
        raise ArgumentTypeError(
            "`%s` must be a float in [0, inf) or a LearningRateSchedule for this optimizer "
            "family (it cannot call a plain function each step); received %r."
            % (name, value)
        )
    return host_value(name, value, at_least, read)


def current_rate(name, value, step):
    """A schedule's or callable's value at use time (``learning_rate``, ``weight_decay``): a
    finite number >= 0, checked where it is concrete: at the concrete iteration ``step``, or
    (``step`` None) a Python number while a compiled step is traced."""
    if not (value >= 0.0 and math.isfinite(value)):
        when = (
            "at iteration %s" % step
            if step is not None
            else "when the compiled step was traced (model.fit, tf.function, jax.jit)"
        )
        raise ValueError(
            "`%s` must be a finite number in [0, inf) at every step; the schedule or callable "
            "gave %r %s. No variable or slot was changed." % (name, value, when)
        )


def traced_rate(name, value):
    """``value`` as a step computes it (a schedule's or callable's): checked by
    :func:`current_rate` where it is a Python number -- known while a compiled step is traced,
    which would bake it into the step; a tensor is the host's to compute."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        current_rate(name, float(value), None)
    return value


def own_keras(name, value, is_schedule, keras_of, owner):
    """Refuse a schedule or optimizer of another installed Keras (``keras_of(value)`` names
    it, ``keras_of(owner)`` this optimizer's): this family's Keras cannot call it."""
    other = None if is_schedule(value) else keras_of(value)
    if other is not None:
        raise ArgumentTypeError(
            "`%s` (%s) belongs to %s; this optimizer is %s's, which cannot use it: give one of "
            "this Keras's `optimizers.schedules` (or optcompat.schedules), a float or a callable."
            % (name, type(value).__name__, other, keras_of(owner))
        )


def decay_rate(value, is_schedule, optional=False, read=None):
    """``weight_decay``: a float >= 0, a host schedule or a callable (as TensorFlow Addons and
    optax take it: called each step), or None where ``optional`` (no decay)."""
    if value is None and optional:
        return None
    if is_schedule(value) or (
        callable(value) and not isinstance(value, numbers.Number)
    ):
        return value
    return host_value("weight_decay", value, at_least, read)


def initial_learning_rate(lr0, conv):
    """``lr_0`` (a schedule's value at step 0, or None); the conventions whose decay follows
    the schedule (paper, keras-adamw) divide by it."""
    if lr0 is not None and CONVENTIONS[conv].decay == "schedule" and not lr0 > 0:
        raise ValueError(
            "With convention=%r the decay is scaled by lr_t / lr_0, so the `learning_rate` "
            "schedule must be > 0 at step 0; it is %r." % (conv, lr0)
        )
    return lr0


def name_patterns(name, value):
    """None or a list of regular-expression strings matched against variable names."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ArgumentTypeError(
            "`%s` must be None or a list of strings (regular expressions searched in "
            "variable names); received %r." % (name, value)
        )
    for v in value:
        if not isinstance(v, str):
            raise ArgumentTypeError(
                "`%s` must contain only strings; received %r." % (name, v)
            )
        try:
            re.compile(v)
        except re.error as error:
            raise ValueError(
                "`%s` must contain regular expressions (searched in variable "
                "names); %r is not one: %s." % (name, v, error)
            )
    return list(value)


COMMON = (
    "learning_rate",
    "weight_decay",
    "convention",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "exclude_from_weight_decay",
)


CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")


def clipping(checked):
    """The clipping arguments of ``checked`` (:func:`common`'s), as a host takes them."""
    return {key: checked[key] for key in CLIPPING}


def common(given, *, is_schedule, allow_callable=True, optional_decay=False, read=None):
    """Checks shared by AdamW and SGDW, of ``given``'s :data:`COMMON` arguments (by name);
    returns the normalised values.  ``optional_decay``: ``weight_decay`` may be None (SGDW,
    as Keras's SGD: no decay)."""
    clips = CLIPPING
    values = dict(
        learning_rate=learning_rate(
            given["learning_rate"], is_schedule, allow_callable, read
        ),
        weight_decay=decay_rate(
            given["weight_decay"], is_schedule, optional_decay, read
        ),
        convention=convention(given["convention"]),
    )
    values.update((key, optional_positive(key, given[key])) for key in clips)
    values["exclude_from_weight_decay"] = name_patterns(
        "exclude_from_weight_decay", given["exclude_from_weight_decay"]
    )
    if sum(values[key] is not None for key in clips) > 1:
        raise ValueError(
            "At most one of `clipnorm`, `clipvalue` and `global_clipnorm` may be set; received "
            "clipnorm=%r, clipvalue=%r, global_clipnorm=%r."
            % tuple(given[key] for key in clips)
        )
    return values


def _name_dict(name, value, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ArgumentTypeError(
            "`%s` must be None or a dict {%s}; received %r (type %s)."
            % (name, what, value, type(value).__name__)
        )
    for key in value:
        if not isinstance(key, str) or not key:
            raise ArgumentTypeError(
                "`%s` keys must be non-empty strings (%s); received %r."
                % (name, what, key)
            )
    return value


def lr_multipliers(value):
    """None or {pattern: factor >= 0}, in the order given (the first matching pattern wins)."""
    value = _name_dict("lr_multipliers", value, "pattern: factor")
    return {k: at_least("lr_multipliers[%r]" % k, f) for k, f in value.items()}


def weight_decays(value):
    """None or {variable name: l2 or (l1, l2)}, each >= 0: as ``{name: (l1, l2)}`` of floats."""
    value = _name_dict("weight_decays", value, "variable name: l2 or (l1, l2)")
    out = {}
    for key, decay in value.items():
        label = "weight_decays[%r]" % key
        if isinstance(decay, (list, tuple)):
            if len(decay) != 2:
                raise ValueError(
                    "`%s` must be a number or a pair (l1, l2); received %r."
                    % (label, decay)
                )
            out[key] = (
                at_least(label + "[0] (l1)", decay[0]),
                at_least(label + "[1] (l2)", decay[1]),
            )
        else:
            out[key] = (0.0, at_least(label, decay))
    return out


def unmatched(argument, keys, names):
    """``strict_names``: every key of ``argument`` must match one of ``names``."""
    if keys:
        raise ValueError(
            "`%s` has %s that match no variable of this optimizer (strict_names=True): %s. The "
            "variables are: %s. Nothing was built."
            % (
                argument,
                "names" if len(keys) > 1 else "a name",
                ", ".join(map(repr, keys)),
                ", ".join(names),
            )
        )


def adamw(beta_1, beta_2, epsilon, amsgrad, read=None):
    """``read``: the family's reader of tensors (and callables) for the betas
    (:func:`host_value`)."""
    return dict(
        beta_1=host_value("beta_1", beta_1, in_unit_interval, read),
        beta_2=host_value("beta_2", beta_2, in_unit_interval, read),
        epsilon=at_least("epsilon", epsilon),
        amsgrad=boolean("amsgrad", amsgrad),
    )


def sgdw(momentum, nesterov, read=None):
    return dict(
        momentum=host_value("momentum", momentum, in_unit_interval, read),
        nesterov=boolean("nesterov", nesterov),
    )


FAST_PATHS = ("auto", "fused", "foreach", None)


def fast_path(value):
    """``optimizer.fast_path``: how the rule is evaluated (never what it computes)."""
    if value not in FAST_PATHS:
        raise ValueError(
            "`fast_path` must be one of %s; received %r." % (FAST_PATHS, value)
        )
    return value


def gradient(grad_shape, grad_dtype, var_shape, var_dtype, var_name):
    """A gradient must have its variable's shape and dtype (unknown dims are not checked)."""
    if grad_dtype != var_dtype:
        raise TypeError(
            "The gradient for variable %r has dtype %s; it must have the variable's dtype %s."
            % (var_name, grad_dtype, var_dtype)
        )
    gs, vs = tuple(grad_shape), tuple(var_shape)
    if len(gs) != len(vs) or any(
        a is not None and b is not None and a != b for a, b in zip(gs, vs)
    ):
        raise ValueError(
            "The gradient for variable %r has shape %s; it must have the variable's shape %s."
            % (var_name, gs, vs)
        )


def float_variable(is_float, var_dtype, var_name):
    if not is_float:
        raise TypeError(
            "Variable %r has dtype %s; AdamW/SGDW update floating-point variables only."
            % (var_name, var_dtype)
        )
