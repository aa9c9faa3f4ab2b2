"""Argument checks, in one place.

Every check runs before an optimizer creates anything, and every message names the
argument, the allowed range and what was received.  Host-free: adapters pass in what
only they can know (e.g. whether a learning rate is one of their schedules).
"""
import math
import numbers

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
        raise ValueError("`%s` must be a finite number %s; received %r." % (name, allowed, value))
    return value


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
            "`convention` must be one of %s; received %r." % (", ".join(map(repr, CONVENTIONS)), value)
        )
    return value


def learning_rate(value, is_schedule, allow_callable=True):
    """A float >= 0, a host schedule, or (where the host supports it) a callable."""
    if is_schedule(value):
        return value
    if callable(value) and not isinstance(value, numbers.Number):
        if allow_callable:
            return value
        raise ArgumentTypeError(
            "`learning_rate` must be a float in [0, inf) or a LearningRateSchedule for this "
            "optimizer family (it cannot call a plain function each step); received %r." % (value,))
    return at_least("learning_rate", value)


def current_learning_rate(value, step):
    """A schedule's value at use time: a finite number >= 0 (checked where it is concrete)."""
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(
            "`learning_rate` must be a finite number in [0, inf) at every step; the schedule "
            "gave %r at iteration %s. No variable or slot was changed." % (value, step))


def initial_learning_rate(lr0, conv):
    """``lr_0`` (a schedule's value at step 0, or None); the conventions whose decay follows
    the schedule (paper, keras-adamw) divide by it."""
    if lr0 is not None and CONVENTIONS[conv].decay == "schedule" and not lr0 > 0:
        raise ValueError(
            "With convention=%r the decay is scaled by lr_t / lr_0, so the `learning_rate` "
            "schedule must be > 0 at step 0; it is %r." % (conv, lr0))
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
            raise ArgumentTypeError("`%s` must contain only strings; received %r." % (name, v))
    return list(value)


def common(lr, weight_decay, conv, clipnorm, clipvalue, global_clipnorm, exclude, is_schedule,
           allow_callable=True, optional_decay=False):
    """Checks shared by AdamW and SGDW; returns the normalised values.  ``optional_decay``:
    ``weight_decay`` may be None (SGDW, as Keras's SGD: no decay)."""
    values = dict(
        learning_rate=learning_rate(lr, is_schedule, allow_callable),
        weight_decay=None if optional_decay and weight_decay is None else at_least("weight_decay", weight_decay),
        convention=convention(conv),
        clipnorm=optional_positive("clipnorm", clipnorm),
        clipvalue=optional_positive("clipvalue", clipvalue),
        global_clipnorm=optional_positive("global_clipnorm", global_clipnorm),
        exclude_from_weight_decay=name_patterns("exclude_from_weight_decay", exclude),
    )
    if sum(values[k] is not None for k in ("clipnorm", "clipvalue", "global_clipnorm")) > 1:
        raise ValueError(
            "At most one of `clipnorm`, `clipvalue` and `global_clipnorm` may be set; received "
            "clipnorm=%r, clipvalue=%r, global_clipnorm=%r." % (clipnorm, clipvalue, global_clipnorm)
        )
    return values


def adamw(beta_1, beta_2, epsilon, amsgrad):
    return dict(
        beta_1=in_unit_interval("beta_1", beta_1),
        beta_2=in_unit_interval("beta_2", beta_2),
        epsilon=at_least("epsilon", epsilon),
        amsgrad=boolean("amsgrad", amsgrad),
    )


def sgdw(momentum, nesterov):
    return dict(momentum=in_unit_interval("momentum", momentum), nesterov=boolean("nesterov", nesterov))


FAST_PATHS = ("auto", "fused", "foreach", None)


def fast_path(value):
    """``optimizer.fast_path``: how the rule is evaluated (never what it computes)."""
    if value not in FAST_PATHS:
        raise ValueError("`fast_path` must be one of %s; received %r." % (FAST_PATHS, value))
    return value


def gradient(grad_shape, grad_dtype, var_shape, var_dtype, var_name):
    """A gradient must have its variable's shape and dtype (unknown dims are not checked)."""
    if grad_dtype != var_dtype:
        raise TypeError(
            "The gradient for variable %r has dtype %s; it must have the variable's dtype %s."
            % (var_name, grad_dtype, var_dtype)
        )
    gs, vs = tuple(grad_shape), tuple(var_shape)
    if len(gs) != len(vs) or any(a is not None and b is not None and a != b for a, b in zip(gs, vs)):
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
