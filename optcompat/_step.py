"""The step, every family's, written once: one variable's update (:func:`apply_one`) and the
learning rate and decay it takes (:func:`rates`).

Keras 2's and Keras 3's ``update_step`` and OptimizerV2's ``_resource_apply_dense`` call
:func:`apply_one`; the declaration's ``_step_coefficients`` calls :func:`rates`.  They reach
the family only through the optimizer's hooks (:mod:`._common`: ``_slot_values``,
``_dense``, ``_fast_one``, ``_schedule_multiplier``) and its :class:`._host.Host`
(``values_of``, ``lr0_value``); the math is the declaration's ``_new_values``
(:mod:`._rule`).
"""

from . import _validate


def rates(optimizer, dtype, learning_rate, iterations, variable=None):
    """``{"lr": lr_t, "decay": d_t}`` in ``dtype`` (``d_t`` the float 0.0 where the decay is a
    concrete 0), and ``weight_decay``, the ``lambda`` it came from (at ``iterations``);
    ``variable``'s own (:meth:`._host.Hosted._own_rates_of`; ``l1``: ``d1_t``) where given."""
    own = None if variable is None else optimizer._own_rates_of(variable)
    lr = optimizer._host.xp.cast(
        _validate.traced_rate("learning_rate", learning_rate), dtype
    )
    eta = optimizer._schedule_multiplier(dtype)
    if eta is not None:
        lr = lr * eta
    return optimizer._decay.coefficients(
        lr,
        lambda: optimizer._decay_store.rate(dtype, iterations),
        own=own,
        eta=eta,
        lr0=None if eta is not None else optimizer._host.lr0_value(optimizer, dtype),
    )


def apply_one(optimizer, gradient, variable, rate, iterations, shared=None):
    """One step on one variable: ``rate()`` gives the learning rate, ``iterations`` is the
    0-based step count; ``shared``: the step's coefficients for the variable's dtype where the
    host computed them once for all variables (OptimizerV2's ``apply_state``).  Returns the
    step's writes as the host takes them (:meth:`._host.Host.group`)."""
    slots = optimizer._slot_values(variable)
    gradient = optimizer._dense(gradient)
    decays = optimizer._decays(variable)
    # a variable with its own coefficients (lr_multipliers, weight_decays): the rule, op by op
    own = optimizer._own_rates_of(variable) is not None
    if not own:
        done, op = optimizer._fast_one(
            gradient,
            variable,
            slots,
            rate=rate,
            iterations=iterations,
            decays=decays,
            shared=shared,
        )
        if done:
            return op
    xp, host = optimizer._host.xp, optimizer._host
    dtype = getattr(variable.dtype, "base_dtype", variable.dtype)
    if shared is not None and not own:
        c = shared
    else:
        c = optimizer._step_coefficients(
            xp, dtype, rate(), iterations, variable if own else None
        )
    x, slot_values = optimizer._host.values_of(optimizer, variable, slots)
    new = optimizer._new_values(
        xp,
        x,
        xp.cast(gradient, dtype),
        slot_values,
        c,
        decay=c["decay"] if decays else 0.0,
        l1=c.get("l1") if decays else None,
    )
    return host.group(
        [
            host.assign(optimizer, target, value)
            for target, value in zip((variable,) + slots, new)
            if target is not None
        ]
    )
