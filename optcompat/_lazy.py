"""Module attributes resolved on first use, on every Python optcompat runs on.

Python 3.7+ calls a module's own ``__getattr__`` / ``__dir__`` (PEP 562).  Python 3.6 does
not, so there the module's class becomes a ``ModuleType`` subclass that calls them (a
module's ``__class__`` can be assigned since 3.5): ``from optcompat import AdamW`` then works
the same on both."""

import sys
import types


def enable(module_name):
    """Make ``module_name``'s ``__getattr__`` / ``__dir__`` work where PEP 562 is missing."""
    if sys.version_info >= (3, 7):
        return
    module = sys.modules[module_name]
    if isinstance(module, _Lazy):
        return
    module.__class__ = _Lazy


class _Lazy(types.ModuleType):
    # Called only after the normal lookup fails, as PEP 562's __getattr__ is.
    def __getattr__(self, name):
        resolve = self.__dict__.get("__getattr__")
        if resolve is None:
            raise AttributeError(
                "module %r has no attribute %r" % (self.__name__, name)
            )
        return resolve(name)

    def __dir__(self):
        listing = self.__dict__.get("__dir__")
        return listing() if listing is not None else sorted(self.__dict__)


# what the caller's frame runs when a face asks who called it (optcompat._faces)
GETATTR_CODE = _Lazy.__getattr__.__code__
