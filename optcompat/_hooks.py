"""Run a callback once a host module has finished importing, whichever comes first.

Keras 3's ``load_model`` finds a custom optimizer only through its registry, and a saved
config names optcompat's classes.  So the classes must be registered as soon as the host
exists -- but ``import optcompat`` must not import the host.  If the host is already in
``sys.modules`` the callback runs now; otherwise a meta-path finder wraps the host's
loader and runs it right after the host module's own code.
"""

import importlib.abc
import importlib.util
import sys
import warnings

_pending = {}  # module name -> [callback]
# modules whose code has run, though importlib may not have marked them yet
_executed = set()


class _PostImportFinder(importlib.abc.MetaPathFinder):
    _busy = False

    def find_spec(self, fullname, path, target=None):
        if fullname not in _pending or self._busy:
            return None
        self._busy = True  # let the real finders answer
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if (
            spec is None
            or spec.loader is None
            or not hasattr(spec.loader, "exec_module")
        ):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_fire(module):
            exec_module(module)
            _executed.add(fullname)
            _fire(fullname)

        # a loader instance belongs to one spec
        spec.loader.exec_module = exec_then_fire
        return spec


_finder = _PostImportFinder()


def _fire(name):
    for callback in _pending.pop(name, []):
        try:
            callback()
        except Exception as e:  # never break the user's `import keras`
            warnings.warn(
                "optcompat could not register with %s: %s: %s"
                % (name, type(e).__name__, e),
                RuntimeWarning,
                stacklevel=2,
            )
    if not _pending and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def initializing(name):
    """Whether module ``name`` is imported but its own code is still running."""
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False)) and name not in _executed


def when_imported(name, callback):
    """Call ``callback()`` once module ``name`` is imported (now, if it already is)."""
    _pending.setdefault(name, []).append(callback)
    if name in sys.modules:
        _fire(name)
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
