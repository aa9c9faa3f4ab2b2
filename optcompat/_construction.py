"""Construction, every family's, written once (:func:`construct`): every shared argument is
checked before the host's ``__init__`` runs, then the host, the decoupled decay (a
:class:`._decay.Decay`, with the host's weight-decay store) and the declaration's own
arguments are built.

A declaration (:mod:`._optimizers`) checks its own arguments (betas, epsilon, momentum, ...)
and hands them here with the shared ones.  The family is reached through the optimizer's
:class:`._host.Host` (``take_aliases``, ``check_arguments``, ``keep``) and its hook
``_init_host`` (:mod:`._common`).
"""

from . import _checks
from . import _decay
from . import _saving
from . import _schedules
from . import _validate

# the arguments every declaration takes and hands on as it got them (its __init__'s names)
SHARED = (
    "learning_rate",
    "weight_decay",
    "convention",
    "exclude_from_weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "name",
    "lr_multipliers",
    "weight_decays",
    "strict_names",
    "fast_path",
    "kwargs",
)


def construct(optimizer, own, given):
    """Check everything, then build ``optimizer``: ``own``, the declaration's checked
    arguments; ``given``, its ``__init__``'s arguments by name (:data:`SHARED`; ``kwargs``, the
    host's others)."""
    a = {key: given[key] for key in SHARED}
    multipliers = _validate.lr_multipliers(a["lr_multipliers"])
    decays = _validate.weight_decays(a["weight_decays"])
    strict = _validate.boolean("strict_names", a["strict_names"])
    fast_path = _validate.fast_path(a["fast_path"])
    host, kwargs = optimizer._host, a["kwargs"]
    # optcompat.schedules' classes are the default family's: another family's optimizer
    # takes one made again for its own Keras (_schedules.adopt)
    learning_rate = _schedules.adopt(
        host.take_aliases(a["learning_rate"], kwargs), host.schedules
    )
    weight_decay = _schedules.adopt(a["weight_decay"], host.schedules)
    _checks.own_keras(optimizer, "learning_rate", learning_rate)
    _checks.own_keras(optimizer, "weight_decay", weight_decay)
    checked = _validate.common(
        dict(a, learning_rate=learning_rate, weight_decay=weight_decay),
        is_schedule=host.is_schedule,
        allow_callable=host.callable_rates,
        optional_decay=optimizer.OPTIONAL_DECAY,
        read=host.read_hyper,
    )
    host.check_arguments(checked)
    lr0 = _validate.initial_learning_rate(
        host.reference_rate(checked["learning_rate"]), checked["convention"]
    )
    optimizer._init_host(checked, a["name"], kwargs)
    optimizer.__dict__["_decay_store"] = host.decay_store(
        optimizer, checked["weight_decay"]
    )
    # outside the host's attribute tracking (which would wrap what it holds)
    optimizer.__dict__.update(
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
        host.keep(optimizer, key, value)
    # get_config writes them back (:func:`._saving.config`)
    optimizer._kept = tuple(own)
    if isinstance(checked["learning_rate"], float):
        _saving.remember(optimizer, "learning_rate", checked["learning_rate"])
    # setters are checked from here on (Decoupled.__setattr__)
    optimizer.__dict__["_optcompat_made"] = True
