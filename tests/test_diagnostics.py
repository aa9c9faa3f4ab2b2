"""``python -m optcompat`` as a user runs it, in real processes: ``--help``, an unknown option
refused, and a configured backend or family that is not installed named with its fix -- in the
JSON for bug reports, on stderr, and by ``--selftest``.  What is installed comes from the env
(``importlib.util.find_spec``, the declared families), never from the code under test."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

import optcompat
from support import CAPTURE
from support import ENV

PKG = os.path.dirname(optcompat.__file__)
TRAINING_BACKENDS = ("tensorflow", "jax", "torch")


def run(*args, **env):
    environ = dict(os.environ, **env)
    for key in [k for k, v in env.items() if v is None]:
        environ.pop(key)
    return subprocess.run([sys.executable, "-m", "optcompat"] + list(args), **CAPTURE,
                          env=environ, timeout=600)


def test_help_says_what_it_prints_and_its_options():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m optcompat")
    for expected in ("--selftest", "--version", "JSON", "bug reports", "not installed"):
        assert expected in out.stdout, out.stdout
    version = run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, "optcompat " + optcompat.__version__)


@pytest.mark.parametrize("wrong", ["--self-test", "selftest", "-x"])
def test_an_unknown_option_is_refused(wrong):
    out = run(wrong)
    assert out.returncode == 2 and out.stdout == "", (out.returncode, out.stdout)
    assert "unrecognized arguments: %s" % wrong in out.stderr and "usage: python -m optcompat" in out.stderr


def test_the_declared_env_has_no_problems():
    """This env's own settings (tox sets KERAS_BACKEND to an installed backend) raise none."""
    if os.environ.get("OPTCOMPAT_ENV_FAMILIES") is None:
        pytest.skip("no tox env declared here (OPTCOMPAT_ENV_FAMILIES): its settings are the user's")
    out = run()
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["problems"] == [] and "problem" not in out.stderr, out.stderr
    assert sorted(info["families"]) == sorted(ENV.families)


@pytest.mark.skipif("keras3" not in ENV.families, reason="this env declares no Keras 3 (family keras3)")
def test_a_configured_backend_that_is_not_installed_is_named_with_its_fix():
    absent = [b for b in TRAINING_BACKENDS if importlib.util.find_spec(b) is None]
    present = [b for b in TRAINING_BACKENDS if importlib.util.find_spec(b) is not None]
    if not absent:
        pytest.skip("tensorflow, jax and torch are all installed here: no backend is missing")
    backend = absent[0]
    expected = ("KERAS_BACKEND=%s but %s is not installed: pip install %s, or set KERAS_BACKEND to one of the "
                "installed backends: %s." % (backend, backend, backend, ", ".join(present)))
    out = run(KERAS_BACKEND=backend)
    assert out.returncode == 0, out.stderr  # the report is still printed, for the bug report
    info = json.loads(out.stdout)
    assert info["keras3_backend"] == backend and info["versions"][backend] is None
    assert info["problems"] == [expected], info["problems"]
    assert "optcompat: problem: " + expected in out.stderr.splitlines()
    print(out.stdout, out.stderr)
    selftest = run("--selftest", KERAS_BACKEND=backend)
    assert selftest.returncode == 1
    fail = [line for line in selftest.stdout.splitlines() if line.startswith("optcompat selftest: keras3")]
    assert fail == ["optcompat selftest: keras3  FAIL  " + expected], selftest.stdout
    assert "No module named" not in selftest.stdout.replace(expected, "")
    print(selftest.stdout)


def test_a_backend_keras_does_not_have_is_named():
    out = run(KERAS_BACKEND="jaxx")
    info = json.loads(out.stdout)
    if "keras3" not in ENV.families:
        assert info["problems"] == []  # no Keras 3 here: its backend setting means nothing
        return
    assert len(info["problems"]) == 1, info["problems"]
    assert info["problems"][0].startswith("KERAS_BACKEND=jaxx is not a Keras 3 backend (one of tensorflow, jax, "
                                          "torch, numpy, openvino): set KERAS_BACKEND to one of the installed")


def test_a_family_that_is_not_installed_is_named_with_its_fix():
    missing = [f for f in ("keras3", "keras2", "legacy") if f not in ENV.families]
    if not missing:
        pytest.skip("every family is installed here (%s)" % ", ".join(ENV.families))
    family = missing[0]
    out = run(OPTCOMPAT_FAMILY=family)
    info = json.loads(out.stdout)
    ours = [p for p in info["problems"] if p.startswith("OPTCOMPAT_FAMILY=")]
    assert ours == ["OPTCOMPAT_FAMILY=%s but that family's host is not installed (%s: %s): install one, or set "
                    "OPTCOMPAT_FAMILY to one of the installed families (%s), or unset it."
                    % (family, family, optcompat._detect.RELEASES[family],
                       ", ".join(f for f in ("keras3", "keras2", "legacy") if f in ENV.families))], info["problems"]
    selftest = run("--selftest", OPTCOMPAT_FAMILY=family)
    assert selftest.returncode == 1 and "optcompat selftest: problem: " + ours[0] in selftest.stdout.splitlines()
    bad = run(OPTCOMPAT_FAMILY="keras4")
    assert bad.returncode == 0, bad.stderr  # no traceback: the report names it
    assert any(p.startswith("OPTCOMPAT_FAMILY=keras4 is not a family (one of keras3, keras2, legacy)")
               for p in json.loads(bad.stdout)["problems"])


def test_no_host_at_all_is_named(tmp_path):
    """A Python without site-packages (``-S``) sees no TensorFlow / Keras: a copy of optcompat says so."""
    shutil.copytree(PKG, str(tmp_path / "optcompat"), ignore=shutil.ignore_patterns("__pycache__"))
    code = "import sys; sys.path.insert(0, %r); import runpy; runpy.run_module('optcompat', run_name='__main__')"
    for args, rc in (([], 0), (["--selftest"], 1)):
        env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "OPTCOMPAT_FAMILY")}
        out = subprocess.run([sys.executable, "-S", "-c", code % str(tmp_path)] + args, **CAPTURE, timeout=120,
                             env=env)
        assert out.returncode == rc, out.stderr
        text = out.stdout if args else json.loads(out.stdout)["problems"][0]
        assert "no TensorFlow / Keras that optcompat supports is installed. Install one, e.g. pip install keras " \
               "jax[cpu] (Keras 3 on JAX) or pip install tensorflow" in text, text


@pytest.mark.parametrize("found, env, expected", [
    (dict(tensorflow="2.15.1", keras="3.15.1"), {},
     'TensorFlow 2.15.1 uses the keras 2.15 package as tf.keras, but keras 3.15.1 is installed: '
     'pip install "keras==2.15.*"'),
    (dict(tensorflow="2.21.0", keras="3.15.1"), {"TF_USE_LEGACY_KERAS": "1", "KERAS_BACKEND": "tensorflow"},
     'TF_USE_LEGACY_KERAS=1 but tf-keras is not installed: pip install "tf-keras==2.21.*", or unset '
     'TF_USE_LEGACY_KERAS.'),
])
def test_problems_of_other_installs(found, env, expected, monkeypatch):
    """Installs this env does not have, given to the reader as their metadata would read."""
    for key in ("TF_USE_LEGACY_KERAS", "OPTCOMPAT_FAMILY", "KERAS_BACKEND"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    versions = dict(dict.fromkeys(("tensorflow", "keras", "tf_keras", "jax", "torch", "tensorflow_addons")), **found)
    assert [text for _, text in optcompat._detect.problems(versions)] == [expected]
