"""Docs move with code: the generated README tables match the code and tox.ini."""
import os
import subprocess
import sys

from support import CAPTURE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_tables_are_current():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "ci", "docs.py"), "--check"],
                         **CAPTURE, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
