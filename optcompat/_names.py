"""The names optcompat's classes go by in each Keras's registry, so that one name loads in
every family and the files each family wrote keep loading.

A Keras's registry (``register_keras_serializable``) is one per Keras: Keras 3's, tf.keras's
(TF 1.15-2.15) and tf_keras's; the last two hold two families (``legacy`` and ``keras2``, from
TF 2.9).  In each registry:

* ``optcompat>AdamW`` (``>SGDW``, ``>Decoupled<Base>``) is the class of the *registry's
  family*: the default family (the class ``optcompat.AdamW`` is) where it is in this Keras,
  else this Keras's own default (``keras2`` in tf_keras beside Keras 3);
* ``optcompat.<family>>AdamW`` is that family's class where the family is in this Keras, and
  the registry's family's class elsewhere (a name from another Keras: ``optcompat.keras2>AdamW``
  in Keras 3 is Keras 3's AdamW).

Each class keeps writing the name it wrote before (Keras 3: ``optcompat>AdamW``; Keras 2:
``optcompat.keras2>AdamW``; OptimizerV2: ``optcompat.legacy>AdamW``): a file names the family
that wrote it, so it loads back into that family wherever that family exists (its optimizer
state's layout is that family's), and into the registry's family elsewhere.
"""

import inspect

from . import _detect

COMMON = "optcompat"


def custom_objects(keras):
    """``keras``'s registry of custom objects, the dict ``load_model`` looks names up in
    (``keras.saving``'s where that Keras has it, else ``keras.utils``')."""
    saving = getattr(keras, "saving", None)
    get = getattr(saving, "get_custom_objects", None) or keras.utils.get_custom_objects
    return get()


def registrar(keras, package, name=None):
    """``keras``'s ``register_keras_serializable(package=package, name=name)`` decorator
    (``keras.saving``'s where that Keras has it, else ``keras.utils'``).

    TF 1.15-2.1's tf.keras write a class's bare ``__name__`` into a saved config (TF 1.15 and
    2.0 have no ``register_keras_serializable`` at all): there the decorator adds the class to
    the registry under ``package>name`` (the name newer releases write) and under its bare name,
    unless that is a name of the host's own (``CosineDecay``: the host's class keeps it)."""
    saving = getattr(keras, "saving", None)
    register = getattr(saving, "register_keras_serializable", None) or getattr(
        keras.utils, "register_keras_serializable", None
    )
    if register is not None and not _detect.writes_class_names(keras.__name__):
        return register(package=package, name=name)

    def add(cls):
        objects = custom_objects(keras)
        objects["%s>%s" % (package, name or cls.__name__)] = cls
        bare = cls.__name__
        if isinstance(objects.get(bare), ByConfig):
            objects[bare].classes.append(cls)
        elif bare not in objects and not _host_names(keras, bare):
            objects[bare] = ByConfig(cls)
        return cls

    return add


class ByConfig(object):
    """A bare name (``AdamW``) that several classes write where the host writes bare names
    (TF 1.15-2.1): optcompat's, and its TFA and keras-adamw faces' (as TFA's and keras-adamw's
    own files do).  A config loads into the last registered class whose ``_wrote(config)`` says
    it wrote it (keras-adamw's face: ``total_iterations``; TFA's: no ``convention``), else
    into the first; called, it is the first class."""

    def __init__(self, first):
        self.classes = [first]

    def __call__(self, *args, **kwargs):
        return self.classes[0](*args, **kwargs)

    def writer(self, config):
        wrote = [
            c
            for c in self.classes[1:]
            if getattr(c, "_wrote", lambda config: False)(config)
        ]
        return wrote[-1] if wrote else self.classes[0]

    def from_config(self, config, custom_objects=None):
        cls = self.writer(config)
        if "custom_objects" in inspect.signature(cls.from_config).parameters:
            return cls.from_config(config, custom_objects=custom_objects)  # optimizers'
        return cls.from_config(config)  # schedules'


def _host_names(keras, name):
    """Whether ``name`` is one of the host's own optimizers or schedules."""
    places = (
        keras.optimizers,
        getattr(keras.optimizers, "schedules", None),
        getattr(keras, "experimental", None),
    )
    return any(hasattr(place, name) for place in places if place is not None)


def _namespace(family):
    return _detect.require(family).split(".optimizers.")[0]


def registry_family(family):
    """The family whose classes the common names denote in ``family``'s Keras registry."""
    here = _namespace(family)
    sharing = [
        f
        for f in _detect.FAMILIES
        if f in _detect.host_modules() and _namespace(f) == here
    ]
    try:
        default = _detect.default_family()
    except (ImportError, ValueError):
        default = None
    if default in sharing:
        return default
    return "keras2" if "keras2" in sharing else family


def register(keras, family, cls):
    """Add the common name of ``cls`` (registered by its family as ``optcompat.<family>>Name``
    or ``optcompat>Name``) to ``keras``'s registry where ``family`` is the registry's family,
    and the names of the families absent from this Keras.  Returns ``cls``."""
    if registry_family(family) != family:
        return cls
    here = _namespace(family)
    name = cls.__name__
    objects = custom_objects(keras)
    objects["%s>%s" % (COMMON, name)] = cls
    for other in _detect.FAMILIES:
        if other not in _detect.host_modules() or _namespace(other) != here:
            objects["%s.%s>%s" % (COMMON, other, name)] = cls
    return cls
