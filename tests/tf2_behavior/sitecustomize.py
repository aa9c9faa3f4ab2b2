"""TF 1.15 with TF 2 behaviour in every process of the env that declares it (tox: tf115 sets
OPTCOMPAT_ENV_TF2_BEHAVIOR=1 and puts this folder on PYTHONPATH), as a TF 1.15 codebase that
moved to eager starts: ``tf.compat.v1.enable_v2_behavior()`` right after ``import tensorflow``
(here: when the process imports it, so a process that imports no framework still imports none).
The suite's fresh processes (saving and loading, the docs' blocks) run so too;
tests/test_graph_mode.py runs its processes without it, in graph mode."""
import importlib.machinery
import os
import sys


class _EnableV2AfterImport(object):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            module.compat.v1.enable_v2_behavior()

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("OPTCOMPAT_ENV_TF2_BEHAVIOR") == "1":
    sys.meta_path.insert(0, _EnableV2AfterImport())
