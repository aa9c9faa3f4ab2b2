"""setuptools reads setup.cfg; this file only writes the PEP 561 stubs (optcompat/*.pyi, build
output of ci/stubs.py) before a build, so the sdist and the wheel hold them.  An unpacked sdist has
no ci/ but has the stubs, written when it was made."""
import os
import runpy

from setuptools import setup

_STUBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ci", "stubs.py")
if os.path.exists(_STUBS):
    runpy.run_path(_STUBS)["write"]()

setup()
