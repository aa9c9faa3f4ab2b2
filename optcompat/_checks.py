"""The checks of AdamW / SGDW where a value is known: a setting between steps, a schedule's or
callable's value before an eager step (and a plain callable's Python number before a step is
traced), the gradients before any change.  Each refuses before anything changes, with
:mod:`._validate`'s messages; the optimizer hands its host (``optimizer._host``).  A traced step
checks the values it computes too (:func:`._step.rates`)."""

import numbers

from . import _detect
from . import _schedules
from . import _validate


def own_keras(optimizer, name, value):
    """Refuse a schedule or optimizer of another installed Keras (tf_keras beside Keras 3)."""
    _validate.own_keras(
        name, value, optimizer._host.is_schedule, _detect.keras_of, type(optimizer)
    )


def setting(optimizer, name, value):
    """``opt.<name> = value`` between steps, checked as the argument is, before the host
    stores it (a refused value changes nothing)."""
    host = optimizer._host
    if name in ("learning_rate", "lr"):
        value = _schedules.adopt(value, host.schedules)
        own_keras(optimizer, name, value)
        return _validate.learning_rate(
            value, host.is_schedule, host.callable_rates, host.read_hyper, name=name
        )
    if name in optimizer.HYPERS:
        return _validate.host_value(
            name, value, _validate.in_unit_interval, host.read_hyper
        )
    return value


def as_float(optimizer, value):
    """A number, host tensor or variable as a float (None where it is symbolic): Keras 3.3's
    Variable has no ``__float__``."""
    if isinstance(value, numbers.Real):
        return float(value)
    got = optimizer._host.read_hyper(value)
    return float(value) if got is _validate.OTHER else got


def rate(optimizer, schedule, iterations, name="learning_rate"):
    """Before a step, refuse a NaN/inf/negative rate from a schedule or callable, where its
    value is concrete: at the counter ``iterations`` in an eager step; for ``iterations`` None
    (a step about to be traced) a plain callable's Python number."""
    if not callable(schedule):
        return
    if iterations is None:
        if not _schedules.takes_step(schedule):
            try:
                value = schedule()
            # reads what is there only in the step: the host's to call
            except Exception:
                return
            _validate.traced_rate(name, value)
        return
    if not optimizer._host.eager():
        return
    try:
        step = int(iterations)
        value = as_float(
            optimizer,
            schedule(iterations) if _schedules.takes_step(schedule) else schedule(),
        )
    except Exception:  # symbolic (traced) values cannot be read here
        return
    if value is not None:
        _validate.current_rate(name, value, step)


def gradients(optimizer, pairs, is_float, dtype_name, shapes=None):
    """Refuse the whole step, before any change, if one pair is bad; ``shapes(g, v)`` gives
    both static shapes as sequences."""
    for g, v in pairs:
        if g is None or v is None:
            continue  # the host filters (and warns about) missing gradients
        name = optimizer._host.display_name(v)
        _validate.float_variable(is_float(v.dtype), dtype_name(v.dtype), name)
        g_shape, v_shape = shapes(g, v) if shapes else (g.shape, v.shape)
        _validate.gradient(
            g_shape, dtype_name(g.dtype), v_shape, dtype_name(v.dtype), name
        )
