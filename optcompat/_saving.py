"""AdamW's / SGDW's config, and what a save says: the arguments as given, schedules
serialized by the host, a config another family wrote made portable, and a warning where the
format being written keeps no optimizer state this release can restore."""

import os
import struct
import sys
import warnings

from . import _checks
from . import _detect
from . import _schedules

_DROPPED = {}  # family -> formats_dropping_state(family), read once


def float32(value):
    """``value`` rounded to float32, as a float32 variable stores it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def remember(optimizer, name, value):
    """Note the float ``value`` given for ``name``: its config gives it back (not a float32
    variable's rounding of it, ``0.009999999776482582`` for ``0.01``)."""
    # read per step
    kept = None if value is None else (value, float(value), float32(value))
    # outside any tracker
    optimizer.__dict__.setdefault("_optcompat_given", {})[name] = kept


def as_given(optimizer, name, stored):
    """``stored`` (a variable's value) as the float last given for ``name`` where it is that
    float or its float32 rounding; ``stored`` itself where something else (a restore) set it.
    A decay given as None (none) stays None while it is 0."""
    remembered = optimizer.__dict__.get("_optcompat_given", {})
    kept = remembered.get(name)
    if kept is None:
        return None if name in remembered and stored == 0.0 else stored
    if isinstance(stored, float) and stored in kept[1:]:
        return kept[0]
    return stored


def serialize_rate(optimizer, value):
    """A rate for ``get_config``: a schedule serialized by the host, a plain callable as its
    value now (as OptimizerV2 saves a callable hyperparameter), a number as it is."""
    host = optimizer._host
    if host.is_schedule(value):
        return host.schedule_module.serialize(value)
    if callable(value):
        return _checks.as_float(optimizer, value())
    return value


def deserialize_rates(cls, config, custom_objects=None):
    """``config`` with its serialized schedules (``learning_rate``, ``weight_decay``) made
    again by the host, optcompat's own found by class name too
    (:func:`._schedules.custom_objects`)."""
    config, host = dict(config), cls._host
    for key in ("learning_rate", "weight_decay"):
        if isinstance(config.get(key), dict):
            found = _schedules.custom_objects(
                config[key], host.schedules, custom_objects
            )
            config[key] = host.schedule_module.deserialize(
                config[key], custom_objects=found
            )
    return config


def portable(cls, config):
    """``config`` without the other families' host arguments ``cls``'s host does not take
    (its host's ``foreign_arguments``) at values that change nothing here."""
    foreign = cls._host.foreign_arguments
    return {
        k: v for k, v in config.items() if not (k in foreign and foreign[k](v, config))
    }


def _format_on_stack(frame):
    """The format of the outermost save function on the stack from ``frame``, or None."""
    saving = None
    while frame is not None:
        code = frame.f_code
        where = code.co_filename.replace(os.sep, "/")
        here = [
            fmt
            for fmt, sites in _detect.SAVE_SITES.items()
            if any(part in where and code.co_name == name for part, name in sites)
        ]
        saving = here[0] if here else saving
        frame = frame.f_back
    return saving


def warn_if_dropping_state(optimizer):
    """Called from ``get_config`` (through :func:`config`): where a save in a format whose
    files this release cannot resume an optimizer from is writing the config (its saving
    module is on the stack), say so, and what keeps the state
    (:func:`._detect.formats_dropping_state`)."""
    family = optimizer._host.family
    if family not in _DROPPED:
        _DROPPED[family] = _detect.formats_dropping_state(family)
    dropped = _DROPPED[family]
    saving = _format_on_stack(sys._getframe(2)) if dropped else None
    if saving in dropped:
        written = {"h5": ".h5", "keras": ".keras", "savedmodel": "a SavedModel"}[saving]
        warnings.warn(
            "optcompat: %s saved as %s keeps no optimizer state this release can restore (the "
            "host's own optimizers lose it there too): a model loaded from it trains on from step "
            "0 with empty slots. To resume, save as %s, or keep the state with "
            "optcompat.state.save(...)."
            % (type(optimizer).__name__, written, dropped[saving]),
            UserWarning,
            stacklevel=3,
        )


def config(optimizer):
    """optcompat's part of ``get_config``: the declaration's arguments, the decay's settings,
    ``fast_path``."""
    warn_if_dropping_state(optimizer)
    values = {
        name: optimizer._host.config_value(optimizer, name) for name in optimizer._kept
    }
    values.update(
        optimizer._decay.config(),
        fast_path=optimizer.fast_path,
        **optimizer._decay.rates_config(),
    )
    return values
