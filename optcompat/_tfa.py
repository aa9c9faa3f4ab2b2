"""TensorFlow Addons' face (:mod:`optcompat.tfa`): argument names and defaults, and
``decay_var_list``, over optcompat's classes.  Host-free; no math here (the rule is
``convention="tfa"``, :mod:`._rule`).
"""

from . import _common
from . import _detect
from . import _extension
from . import _faces
from . import _names

# the classes' module: where users find them (a vendored copy's own)
_FACE = __package__ + ".tfa"
_MADE = {}  # (family, package) -> {name: class}
_EXTENDED = {}  # (family, base class) -> extend_with_decoupled_weight_decay(base)
_MIXINS = {}  # a family's hook class -> DecoupledWeightDecayExtension with those hooks


class _Listed(object):
    """The variables of a ``decay_var_list``, found by the family's key for a variable
    (:meth:`._host.Host.identity`: TFA's ``ref()`` on OptimizerV2; kept here so no other
    variable takes an id)."""

    def __init__(self, variables, optimizer):
        self.variables, self.optimizer = list(variables), optimizer
        self.keys = set(optimizer._host.identity(optimizer, v) for v in self.variables)

    def __contains__(self, variable):
        return self.optimizer._host.identity(self.optimizer, variable) in self.keys


class DecoupledWeightDecayExtension(object):
    """TensorFlow Addons' mixin: ``Cls(weight_decay, *args, exclude_from_weight_decay=None,
    convention="tfa", **kwargs)`` with the base optimizer's arguments, and ``decay_var_list`` in
    ``minimize`` / ``apply_gradients``: the variables that decay in that call (all of them where
    it is None, less ``exclude_from_weight_decay``'s), taking priority over the exclusion.

    As in TFA it goes first among the bases of a class (``class MyAdamW(
    DecoupledWeightDecayExtension, tf.keras.optimizers.Adam)``); such a class gets the decoupled
    decay of :func:`optcompat.decoupled` for its base's family."""

    def __init__(self, weight_decay, *args, **kwargs):
        kwargs.setdefault("convention", "tfa")
        super(DecoupledWeightDecayExtension, self).__init__(
            *args, weight_decay=weight_decay, **kwargs
        )
        self._decay_var_list = None

    @staticmethod
    def _wrote(config):
        """Whether a config saved under a bare name (TF 1.15-2.1) is TFA's or this face's: no
        ``convention`` (TFA's own) or ``"tfa"``."""
        return "weight_decay" in config and config.get("convention", "tfa") == "tfa"

    def __init_subclass__(cls, **kwargs):
        super(DecoupledWeightDecayExtension, cls).__init_subclass__(**kwargs)
        if any(
            issubclass(b, (_extension.Extension, _common.Decoupled))
            for b in cls.__bases__
        ):
            return  # optcompat's own classes: the decay is there
        hosts = [b for b in cls.__bases__ if _detect.family_of_class(b) is not None]
        if not hosts:
            return  # a mixin of the user's, no optimizer yet
        if DecoupledWeightDecayExtension not in cls.__bases__:
            raise TypeError(
                "%s: put DecoupledWeightDecayExtension itself first among the bases, before %s."
                % (cls.__name__, hosts[0].__name__)
            )
        # the user's class as TFA's docs write it: DecoupledWeightDecayExtension becomes the
        # same mixin with the hooks of the base's family (their decay before the base's step)
        mixin = _mixin(_detect.family_of_class(hosts[0])[0])
        cls.__bases__ = tuple(
            mixin if b is DecoupledWeightDecayExtension else b for b in cls.__bases__
        )

    # -- decay_var_list ----------------------------------------------------------------
    def _set_decay_var_list(self, var_list, decay_var_list=None):
        """TFA's: ``decay_var_list`` decays exactly those; None: every variable the exclusion
        leaves (``_do_use_weight_decay``)."""
        self._decay_var_list = _Listed(decay_var_list, self) if decay_var_list else None

    def _do_use_weight_decay(self, var):
        """Whether ``var`` decays in this call (TFA's name)."""
        listed = self.__dict__.get("_decay_var_list")
        if listed is None:
            return super(DecoupledWeightDecayExtension, self)._decays(var)
        return var in listed

    def _decays(self, variable):
        return self._do_use_weight_decay(variable)

    def minimize(
        self, loss, var_list, grad_loss=None, name=None, decay_var_list=None, tape=None
    ):
        """The base's ``minimize``, decaying ``decay_var_list`` only where it is given."""
        given = dict(grad_loss=grad_loss, name=name, tape=tape)
        kwargs = {key: value for key, value in given.items() if value is not None}
        self._set_decay_var_list(var_list, decay_var_list)
        # the base's minimize calls apply_gradients
        self.__dict__["_decay_var_list_set"] = True
        try:
            return super(DecoupledWeightDecayExtension, self).minimize(
                loss, var_list=var_list, **kwargs
            )
        finally:
            self.__dict__["_decay_var_list_set"] = False

    def apply_gradients(self, grads_and_vars, name=None, decay_var_list=None, **kwargs):
        """The base's ``apply_gradients``, decaying ``decay_var_list`` only where it is given."""
        grads_and_vars = list(grads_and_vars)
        if decay_var_list or not self.__dict__.get("_decay_var_list_set"):
            self._set_decay_var_list([v for _, v in grads_and_vars], decay_var_list)
        if name is not None:
            kwargs["name"] = name
        # Keras 3's apply_gradients calls apply
        self.__dict__["_decay_var_list_set"] = True
        try:
            return super(DecoupledWeightDecayExtension, self).apply_gradients(
                grads_and_vars, **kwargs
            )
        finally:
            self.__dict__["_decay_var_list_set"] = False

    def apply(self, grads, trainable_variables=None):
        """Keras 3's ``apply`` (``fit`` calls it): a ``decay_var_list`` of an earlier
        call is not kept."""
        if not self.__dict__.get("_decay_var_list_set"):
            self._decay_var_list = None
        return super(DecoupledWeightDecayExtension, self).apply(
            grads, trainable_variables
        )


class _AdamWFace(DecoupledWeightDecayExtension):
    def __init__(self, weight_decay, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-07, amsgrad=False, name="AdamW", **kwargs):  # fmt: skip
        super(_AdamWFace, self).__init__(**_faces.arguments(locals()))


class _SGDWFace(DecoupledWeightDecayExtension):
    def __init__(self, weight_decay, learning_rate=0.001, momentum=0.0, nesterov=False,
                 name="SGDW", **kwargs):  # fmt: skip
        super(_SGDWFace, self).__init__(**_faces.arguments(locals()))


def _mixin(family):
    """DecoupledWeightDecayExtension with ``family``'s hooks of :mod:`._extension`."""
    hooks = _faces.family_module(family)._Extension
    if hooks not in _MIXINS:
        _MIXINS[hooks] = type(
            "DecoupledWeightDecayExtension",
            (DecoupledWeightDecayExtension, hooks),
            {"__module__": _FACE, "__doc__": DecoupledWeightDecayExtension.__doc__},
        )
    return _MIXINS[hooks]


def _register(module, package, name=None):
    return _names.registrar(module.keras, package, name)


def classes(family, package=None):
    """TFA's names on ``family``: ``AdamW``, ``SGDW`` (registered under ``package``;
    default ``optcompat.tfa.<family>``), ``extend_with_decoupled_weight_decay``,
    ``DecoupledWeightDecayExtension``."""
    package = package or "optcompat.tfa." + family
    if (family, package) not in _MADE:
        module = _faces.family_module(family)
        register = _register(module, package)
        made = {"DecoupledWeightDecayExtension": DecoupledWeightDecayExtension}
        for face, base in ((_AdamWFace, module.AdamW), (_SGDWFace, module.SGDW)):
            doc = (
                "TensorFlow Addons' ``%s`` (``optcompat.tfa``): ``%s%s``, with "
                '``convention="tfa"``; the arguments, the rule and the family: '
                "%s.%s.\n\n%s"
                % (
                    base.__name__,
                    base.__name__,
                    _faces.signature(face),
                    base.__module__,
                    base.__name__,
                    base.__doc__,
                )
            )
            made[base.__name__] = register(
                type(
                    base.__name__,
                    (face, base),
                    {
                        "__module__": _FACE,
                        "__qualname__": base.__name__,
                        "__doc__": doc,
                    },
                )
            )
        made["extend_with_decoupled_weight_decay"] = lambda base_optimizer: _extended(
            family, base_optimizer
        )
        _MADE[(family, package)] = made
    return _MADE[(family, package)]


def _extended(family, base):
    """``base`` of ``family`` with TFA's face over :func:`optcompat.decoupled`: named as TFA
    names it (``OptimizerWithDecoupledWeightDecay``), registered as
    ``optcompat.tfa.<family>>Decoupled<Base>`` (TFA registers none; a name is taken once)."""
    if (family, base) not in _EXTENDED:
        inner = _faces.family_module(family).decoupled(base)
        name = "OptimizerWithDecoupledWeightDecay"
        cls = type(
            name,
            (DecoupledWeightDecayExtension, inner),
            {"__module__": _FACE, "__qualname__": name, "__doc__": inner.__doc__},
        )
        _EXTENDED[(family, base)] = _register(
            _faces.family_module(family), "optcompat.tfa." + family, inner.__name__
        )(cls)
    return _EXTENDED[(family, base)]
