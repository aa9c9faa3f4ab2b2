"""``python -m optcompat --selftest`` (vendored copies, CI maintainers): it passes in every family
this env declares, its bundled float64 numbers are those of tests/reference.py, and it fails
where a number is off."""
import os
import subprocess
import sys

import pytest

from support import CAPTURE
from support import ENV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bundled_numbers_are_the_references():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "ci", "selftest_data.py"), "--check"],
                         **CAPTURE, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_selftest_passes_in_every_declared_family():
    out = subprocess.run([sys.executable, "-m", "optcompat", "--selftest"], **CAPTURE,
                         timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith("optcompat selftest:")]
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert sorted(line.split()[2] for line in lines) == sorted(ENV.families), lines
    assert all(line.split()[3] == "pass" for line in lines), lines
    print("\n".join(lines))


def test_selftest_fails_where_a_number_is_off(host, monkeypatch):
    from optcompat import _selftest

    name, kwargs, expected = _selftest.CASES[0]
    monkeypatch.setattr(_selftest, "CASES", [(name, kwargs, [v + 1e-3 for v in expected])])
    passed, total, worst = _selftest.run_family(host.family)
    assert (passed, total) == (0, 1) and worst == pytest.approx(1e-3, rel=0.05)


def test_demo_runs_and_leaves_no_folder(tmp_path):
    """``python -m optcompat.demo`` trains, saves, reloads and resumes, then removes its folder."""
    env = dict(os.environ, TMPDIR=str(tmp_path), TEMP=str(tmp_path), TMP=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "optcompat.demo", "--epochs", "1"], **CAPTURE, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "reloaded optimizer" in out.stdout and "final loss" in out.stdout
    assert not [p for p in os.listdir(str(tmp_path)) if p.startswith("optcompat-demo-")]
