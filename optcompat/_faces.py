"""The drop-in faces' module plumbing (`tfa`, `keras_adamw` and their submodules,
which take the peers' module paths), written once:

- `install`: PEP 562 `__getattr__` / `__dir__` for a face module -- its classes resolved
  on first use (no framework imported before), and a name of the peer that optcompat does not
  provide refused with a message saying what the face provides: an `AttributeError`
  (`tfa.optimizers.RectifiedAdam`), an `ImportError` in `from ... import`, and a
  `ModuleNotFoundError` for a submodule (`import optcompat.tfa.layers`).
- `attribute_of`: a name resolved from another module of the face (a submodule giving
  its package's classes).
- `family_module`, `signature`, `arguments`, `peer_family`: what both faces' classes are
  made from.
"""

import importlib
import importlib.abc
import sys

from . import _detect
from . import _lazy


def install(module_globals, refusal, names=(), resolve=None):
    """Give the module whose globals are `module_globals` PEP 562's `__getattr__` and
    `__dir__`: each of `names` is `resolve(name)` on first use, then kept in the module;
    another public name is refused with `refusal` (what the face provides, and that the rest
    of the peer is not part of optcompat).  A package's missing submodules are refused too."""
    module, names = module_globals["__name__"], tuple(names)

    def __getattr__(name):
        if name in names:
            value = module_globals[name] = resolve(name)
            return value
        caller = sys._getframe(1)
        # Python 3.6: called through _lazy's module class
        if caller.f_code is _lazy.GETATTR_CODE:
            caller = caller.f_back
        raise _refused(module, name, refusal, caller)

    def __dir__():
        return sorted(set(module_globals) | set(names))

    module_globals.update(__getattr__=__getattr__, __dir__=__dir__)
    _lazy.enable(module)  # Python 3.6: no PEP 562
    if "__path__" in module_globals:
        _SUBMODULES.packages[module] = refusal


def attribute_of(module):
    """`resolve` for `install`: the name taken from the module `module` (absolute)."""
    return lambda name: getattr(importlib.import_module(module), name)


def family_module(family):
    """The adapter module of ``family`` in this copy of optcompat (relative: in a vendored
    copy, the copy's own)."""
    return importlib.import_module("." + family, __package__)


def signature(face):
    """``face.__init__``'s signature without ``self``, as the faces' docstrings show it."""
    import inspect

    return str(inspect.signature(face.__init__)).replace("(self, ", "(")


def arguments(given):
    """A face's ``__init__`` arguments, ``locals()`` at its start, as keywords to hand on:
    its own names (not ``self``, nor the ``__class__`` cell that ``super()`` creates) and
    what ``**kwargs`` took."""
    given = dict(given)
    extra = given.pop("kwargs", {})
    given.pop("self", None)
    given.pop("__class__", None)
    given.update(extra)
    return given


def peer_family():
    """The family of the peers' own classes (TFA's and keras-adamw's ``TF_KERAS=1`` ones
    were OptimizerV2): ``"legacy"`` where the default family is OptimizerV2 or Keras 2 and
    OptimizerV2 is there, else the default family."""
    family = _detect.default_family()
    if family in ("keras2", "legacy") and "legacy" in _detect.available_families():
        return "legacy"
    return family


def _refused(module, name, refusal, caller):
    if name.startswith("__"):  # dunders: what tools probe for, plainly absent
        return AttributeError("module %r has no attribute %r" % (module, name))
    message = "%s has no %r: %s" % (module, name, refusal)
    # `from optcompat.tfa.optimizers import RectifiedAdam` asks through getattr, and Python
    # replaces an AttributeError there with its own "cannot import name": an ImportError keeps
    # the message (it is the error that statement raises anyway)
    return (
        ImportError(message, name=module)
        if _importing_from(caller)
        else AttributeError(message)
    )


def _importing_from(frame):
    """Whether `frame` is executing `from module import name` (the opcode IMPORT_FROM)."""
    try:
        import opcode

        return frame.f_code.co_code[frame.f_lasti] == opcode.opmap["IMPORT_FROM"]
    except Exception:  # another interpreter's frames: the plain AttributeError
        return False


class _MissingSubmodules(importlib.abc.MetaPathFinder):
    """Last on `sys.meta_path`, so asked only for a module no other finder found: a face
    package's submodule that is not there (`optcompat.tfa.layers`) is refused with the face's
    message instead of Python's bare "No module named"."""

    def __init__(self):
        self.packages = {}  # package name -> refusal

    def find_spec(self, fullname, path=None, target=None):
        package = fullname.rpartition(".")[0]
        if package in self.packages:
            raise ModuleNotFoundError(
                "No module named %r: %s" % (fullname, self.packages[package]),
                name=fullname,
            )
        return None


_SUBMODULES = _MissingSubmodules()
if _SUBMODULES not in sys.meta_path:
    sys.meta_path.append(_SUBMODULES)
