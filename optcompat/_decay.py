"""Decoupled weight decay's settings as one host-free component.

AdamW / SGDW (:class:`._common.Decoupled`) and the ``decoupled()`` classes
(:class:`._extension.Extension`) each hold one :class:`Decay`, built once from checked
arguments: the convention, the exclusion patterns and ``lr_0``.  It answers which variable
names decay, ``lr_0`` in a step's dtype, and its part of the config; it reaches no framework
(the step hands it ``xp``).
"""
import re


class Decay(object):
    """``convention`` (checked), ``exclude`` (checked patterns, regular expressions searched
    in variable names), ``lr0`` (a float or None: the learning rate the decay is measured
    against, :func:`._validate.initial_learning_rate`)."""

    __slots__ = ("convention", "exclude", "lr0", "_pattern")

    def __init__(self, convention, exclude, lr0):
        self.convention = convention
        self.lr0 = lr0
        self.exclude = []
        self._pattern = None
        self.exclude_more(exclude)

    def exclude_more(self, patterns):
        """Add checked ``patterns`` (``opt.exclude_from_weight_decay(var_names=...)``)."""
        if patterns:
            self.exclude = self.exclude + list(patterns)
            self._pattern = re.compile("|".join(self.exclude))

    def excludes(self, name):
        """Whether a pattern matches the variable name ``name`` (it then gets no decay)."""
        return self._pattern is not None and self._pattern.search(name) is not None

    def lr0_value(self, xp, dtype):
        """``lr_0`` in ``dtype``, or None."""
        return None if self.lr0 is None else xp.cast(self.lr0, dtype)

    def config(self):
        return {"convention": self.convention, "exclude_from_weight_decay": list(self.exclude) or None}
