r"""``optcompat.decoupled(OptimizerClass)``: decoupled weight decay in front of any host
optimizer's own step (TensorFlow Addons' ``extend_with_decoupled_weight_decay``), in every family.

Host-free: the arguments, their checks, the config and the decay itself are here; a family
adapter gives only where its host runs the decay (:func:`make` takes the family's hook class):
Keras 3 and Keras 2 in ``_apply_weight_decay`` / ``update_step``, OptimizerV2 in
``_resource_apply_*``.  Before each step of the base optimizer every variable that decays
becomes, with ``x`` its value before the step,

    x <- x - d_t x,     d_t as for AdamW (``optcompat.CONVENTIONS``: lr_t lambda, lambda, or
                        (lr_t / lr_0) lambda)

then the base optimizer takes its step, with its own slots, variables and file layout
unchanged: a file of ``Nadam`` loads into ``decoupled(Nadam)`` and the reverse.  Keras 2 and 3
keep ``weight_decay`` as a Python float (no optimizer variable: the layout stays the base's);
a value set between steps reaches steps traced after it.  OptimizerV2 keeps it as a
hyperparameter, as TensorFlow Addons does.
"""
from . import _rule, _validate
from ._conventions import DEFAULT

_MADE = {}  # (hook class, base class) -> the decoupled class


class Extension(object):
    """The mixin placed before the base optimizer class; ``__init__`` takes the base's
    arguments plus ``weight_decay``, ``convention`` and ``exclude_from_weight_decay``."""

    def __init__(self, *args, **kwargs):
        if "weight_decay" not in kwargs:
            raise TypeError("%s needs `weight_decay` (a float >= 0, the decoupled decay), as a keyword argument."
                            % type(self).__name__)
        weight_decay = _validate.at_least("weight_decay", kwargs.pop("weight_decay"))
        convention = _validate.convention(kwargs.pop("convention", DEFAULT))
        exclude = _validate.name_patterns("exclude_from_weight_decay", kwargs.pop("exclude_from_weight_decay", None))
        self._init_base(args, kwargs)
        self.convention = convention
        self._exclude_names = exclude
        self._exclude_re = None
        if exclude:
            import re

            self._exclude_re = re.compile("|".join(exclude))
        self._lr0 = _validate.initial_learning_rate(self._initial_rate(), convention)
        self._store_weight_decay(weight_decay)

    def _init_base(self, args, kwargs):
        super(Extension, self).__init__(*args, **kwargs)

    def _decays(self, variable):
        name = getattr(variable, "path", None) or variable.name
        if self._exclude_re is not None and self._exclude_re.search(name):
            return False
        return self._host_allows_decay(variable)

    def _host_allows_decay(self, variable):
        return True

    def _decayed_value(self, xp, variable, lr, weight_decay):
        """``x - d_t x`` for ``variable`` (the rule's decay, :mod:`._rule`)."""
        dtype = variable.dtype
        lr = xp.cast(lr, dtype)
        lr0 = None if self._lr0 is None else xp.cast(self._lr0, dtype)
        decay = _rule.decay_coefficient(self.convention, xp.cast(weight_decay, dtype), lr, lr0)
        return _rule.decayed(self.convention, variable, decay)

    def _extension_config(self, config):
        config.update(weight_decay=self.weight_decay, convention=self.convention,
                      exclude_from_weight_decay=list(self._exclude_names) or None)
        return config


def make(hooks, base, register):
    """The class ``decoupled(base)`` for a family whose hook class is ``hooks``: named
    ``Decoupled<Base>``, registered by ``register``, made once per base class."""
    if (hooks, base) not in _MADE:
        name = "Decoupled" + base.__name__
        doc = ("%s with decoupled weight decay (optcompat.decoupled): ``%s(*args, weight_decay, "
               "convention=%r, exclude_from_weight_decay=None, **kwargs)``, the other arguments "
               "those of %s.%s.\n\n%s" % (base.__name__, name, DEFAULT, base.__module__, base.__name__,
                                          __doc__.split("\n\n", 1)[1]))
        cls = type(name, (hooks, base), {"__doc__": doc, "__module__": __name__.rsplit(".", 1)[0],
                                          "__qualname__": name})
        _MADE[(hooks, base)] = register(cls)
    return _MADE[(hooks, base)]
