"""Decoupled weight decay's settings as one host-free component.

AdamW / SGDW (:class:`._common.Decoupled`), the ``decoupled()`` classes
(:class:`._extension.Extension`) and keras-adamw's NadamW each hold one :class:`Decay`, built
once from checked arguments: the convention, the exclusion patterns, ``lr_0`` and the
variables' own rates (``lr_multipliers``, ``weight_decays``, ``strict_names``).  It answers
which variable names decay, a variable's own rates, ``lr_0`` in a step's dtype, and its part of
the config; it reaches no framework (the step hands it ``xp``, the adapter the names).
"""

import re

from . import _rule
from . import _validate


def names_of(variable):
    """The names a ``weight_decays`` key may give for ``variable``: its path (Keras 3), its
    name, and that name without TensorFlow's ``:0``."""
    names = [getattr(variable, "path", None), variable.name]
    if variable.name.endswith(":0"):
        names.append(variable.name[:-2])
    return [n for n in names if n]


def _names_one_of(key, names):
    """Whether a ``weight_decays`` key names one of ``names`` (with or without ``:0``)."""
    return key in names or (key.endswith(":0") and key[:-2] in names)


class Decay(object):
    """``convention`` (checked), ``exclude`` (checked patterns, regular expressions searched
    in variable names), ``lr0`` (a float or None: the learning rate the decay is measured
    against, :func:`._validate.initial_learning_rate`); ``multipliers`` (``{pattern:
    factor}``), ``decays`` (``{variable name: (l1, l2)}``) and ``strict`` checked too."""

    __slots__ = tuple(
        "convention exclude lr0 multipliers decays strict _pattern _own".split()
    )

    def __init__(
        self, convention, exclude, lr0, multipliers=None, decays=None, strict=False
    ):
        self.convention = convention
        self.lr0 = lr0
        self.exclude = []
        self._pattern = None
        self.exclude_more(exclude)
        self.own_rates_from(multipliers, decays, strict)

    def exclude_more(self, patterns):
        """Add checked ``patterns`` (``opt.exclude_from_weight_decay(var_names=...)``)."""
        if patterns:
            self.exclude = self.exclude + list(patterns)
            self._pattern = re.compile("|".join(self.exclude))

    def excludes(self, name):
        """Whether a pattern matches the variable name ``name`` (it then gets no decay)."""
        return self._pattern is not None and self._pattern.search(name) is not None

    def own_rates_from(self, multipliers, decays, strict=False):
        """Set the variables' own rates (checked), forgetting what was found before."""
        self.multipliers = multipliers or {}
        self.decays = decays or {}
        self.strict = strict
        self._own = {}

    def own_rates(self, key, names):
        """``(factor, (l1, l2) or None)`` for the variable named ``key`` (``names``: every name
        it goes by, :func:`names_of`): its lr multiplier (the first pattern ``key`` contains,
        as keras-adamw matches them) and its own decays; None where it has neither (it takes
        the step's shared coefficients)."""
        if not (self.multipliers or self.decays):
            return None
        if key not in self._own:
            factor = next((f for p, f in self.multipliers.items() if p in key), 1.0)
            decays = next(
                (d for k, d in self.decays.items() if _names_one_of(k, names)), None
            )
            own = None if (factor == 1.0 and decays is None) else (factor, decays)
            self._own[key] = own
        return self._own[key]

    def check_names(self, keys, names):
        """``strict``: refuse, before any slot exists, a pattern or name matching none of the
        variables (``keys`` their names, ``names`` every name they go by)."""
        if not self.strict:
            return
        patterns = [p for p in self.multipliers if not any(p in k for k in keys)]
        _validate.unmatched("lr_multipliers", patterns, keys)
        every = set(names)
        unnamed = [k for k in self.decays if not _names_one_of(k, every)]
        _validate.unmatched("weight_decays", unnamed, keys)

    def coefficients(self, lr, weight_decay, own=None, eta=None, lr0=None):
        """A variable's ``{"lr": lr_t * factor, "decay": d_t, "weight_decay": lambda}`` (and
        ``"l1": d1_t`` where it has an L1 decay) from the step's ``lr`` (``lr_t``, times
        ``eta`` where the optimizer holds it), ``weight_decay()`` (the step's ``lambda``,
        called only where the variable has no decays of its own), ``own`` (:meth:`own_rates`;
        None: the shared coefficients) and ``lr0`` (None: ``eta_t = 1``, or ``eta`` given).
        Where ``d_t`` follows ``lr_t`` (keras, torch) it takes the factor's rate, else the
        schedule multiplier; a concrete zero ``lambda`` gives the float 0.0 (no decay op)."""
        factor, decays = own or (1.0, None)
        own_lr = lr if factor == 1.0 else lr * factor
        follows = own_lr if _rule.CONVENTIONS[self.convention].decay == "lr" else lr
        l1, rate = (0.0, weight_decay()) if decays is None else decays
        c = {"lr": own_lr, "decay": 0.0, "weight_decay": rate}
        if not (isinstance(rate, float) and rate == 0.0):
            c["decay"] = _rule.decay_coefficient(
                self.convention, rate, follows, lr0, eta
            )
        if l1:
            c["l1"] = _rule.decay_coefficient(self.convention, l1, follows, lr0, eta)
        return c

    def lr0_value(self, xp, dtype):
        """``lr_0`` in ``dtype``, or None."""
        return None if self.lr0 is None else xp.cast(self.lr0, dtype)

    def config(self):
        return {
            "convention": self.convention,
            "exclude_from_weight_decay": list(self.exclude) or None,
        }

    def rates_config(self):
        """``lr_multipliers`` / ``weight_decays`` / ``strict_names`` as AdamW's config has them."""
        return {
            "lr_multipliers": dict(self.multipliers) or None,
            "weight_decays": {k: list(d) for k, d in self.decays.items()} or None,
            "strict_names": self.strict,
        }
