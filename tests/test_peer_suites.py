"""Keras's own optimizer tests, run against optcompat's classes: the proof users trust.

Keras 3's wheel ships ``keras/src/optimizers/adamw_test.py`` and ``sgd_test.py`` (3.15.1 does;
older wheels do not, and the test is skipped naming the release).  Each file is copied from
the installed Keras into a temporary folder with one line changed -- the import of Keras's
class becomes optcompat's (``SGD`` is ``optcompat.keras3.SGDW``) -- and run by pytest in a
fresh process, as Keras's CI runs it.  Message wording aside: a ``conftest.py`` beside the
copies makes ``assertRaisesRegex`` check the exception's type and that the message names
every argument the expected message names (its backticked words), not Keras's sentence.
The same files also run unchanged against Keras's own classes, so a failure is ours.

TensorFlow Addons' ``weight_decay_optimizers_test.py``, at the tag of the env's TFA release, runs
the same way: once as TFA wrote it, once with its import of ``weight_decay_optimizers`` made
``optcompat.tfa``; every test that passes with TFA must pass with optcompat.tfa.  TFA's wheels
ship no tests: ``python3 ci/peer_files.py`` puts the files in ``.cache/peers`` (it needs the
internet, or ``--mirror``); where a file is not there the test is skipped, naming that command.
"""
import difflib
import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from support import CAPTURE
from support import ENV

# file -> (Keras's import line, optcompat's)
SUITES = {
    "adamw_test.py": ("from keras.src.optimizers.adamw import AdamW",
                      "from optcompat.keras3 import AdamW"),
    "sgd_test.py": ("from keras.src.optimizers.sgd import SGD",
                    "from optcompat.keras3 import SGDW as SGD"),
}

CONFTEST = '''
import re

from keras.src import testing

_assert_raises_regex = testing.TestCase.assertRaisesRegex


def _same_error_named_alike(self, expected_exception, expected_regex, *args, **kwargs):
    """The exception's type, and every backticked argument of Keras's message named."""
    names = re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", expected_regex)
    pattern = "".join("(?=.*`%s`)" % re.escape(n) for n in names) or "."
    return _assert_raises_regex(self, expected_exception, "(?s)" + pattern, *args, **kwargs)


testing.TestCase.assertRaisesRegex = _same_error_named_alike
'''


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_CACHE = os.environ.get("OPTCOMPAT_PEER_CACHE") or os.path.join(ROOT, ".cache", "peers")

TFA_FILE = "tensorflow_addons/optimizers/tests/weight_decay_optimizers_test.py"
TFA_IMPORT = ("from tensorflow_addons.optimizers import weight_decay_optimizers",
              "from optcompat import tfa as weight_decay_optimizers")
TFA_CONFTEST = "from tensorflow_addons.conftest import *  # noqa: F401,F403  (TFA's fixtures and options)\n"


def not_cached(reason):
    """A peer file is not in the cache: skip -- or fail, in an env that declares it runs the peer
    suites (OPTCOMPAT_ENV_PEERS=1: tox's label ``peers``), where a skip would hide that none ran."""
    if os.environ.get("OPTCOMPAT_ENV_PEERS") == "1":
        pytest.fail(reason + " (this env declares OPTCOMPAT_ENV_PEERS=1: the peers' files must be there)")
    pytest.skip(reason)


def keras_tests_folder():
    spec = importlib.util.find_spec("keras")
    return os.path.join(os.path.dirname(spec.origin), "src", "optimizers")


def run_suite(tmp_path, name, ours, source=None, imports=None, conftest=CONFTEST, files=None):
    """Run Keras's ``name`` (or ``source`` under that name, its import line and ours given as
    ``imports``; optcompat's class where ``ours``) in a fresh pytest, ``files`` ({name: text})
    beside it: (rc, {test: outcome}, output)."""
    source = open(os.path.join(keras_tests_folder(), name)).read() if source is None else source
    peer_import, optcompat_import = imports or SUITES[name]
    assert source.count(peer_import) == 1, "%s no longer imports %r" % (name, peer_import)
    folder = tmp_path / ("optcompat" if ours else "peer")
    folder.mkdir()
    (folder / name).write_text(source.replace(peer_import, optcompat_import) if ours else source)
    (folder / "conftest.py").write_text(conftest)
    for extra, text in (files or {}).items():
        (folder / extra).write_text(text)
    report = folder / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                           str(folder), "--junitxml", str(report), str(folder / name)],
                          cwd=str(folder), **CAPTURE, timeout=600)
    outcomes = {}
    for case in ElementTree.parse(str(report)).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    return proc.returncode, outcomes, proc.stdout[-6000:] + proc.stderr[-3000:]


@pytest.mark.families("keras3")
@pytest.mark.parametrize("name", sorted(SUITES))
def test_keras_own_optimizer_tests_pass_against_optcompat(host, name, tmp_path):
    if not os.path.exists(os.path.join(keras_tests_folder(), name)):
        pytest.skip("the keras %s wheel ships no keras/src/optimizers/%s (Keras 3.15.1 does)"
                    % (ENV.versions["keras"], name))
    rc, theirs, output = run_suite(tmp_path, name, ours=False)
    assert rc == 0 and theirs and set(theirs.values()) == {"passed"}, \
        "Keras's own classes fail their own %s here: %s\n%s" % (name, theirs, output)
    rc, ours, output = run_suite(tmp_path, name, ours=True)
    failed = sorted(t for t, outcome in ours.items() if outcome != "passed")
    assert set(ours) == set(theirs), output
    assert rc == 0 and not failed, "against optcompat, %d of %d fail: %s\n%s" % (
        len(failed), len(ours), failed, output)
    print("%s: %d of %d Keras tests pass against optcompat (%s)"
          % (name, len(ours), len(theirs), ", ".join(sorted(ours))))
    assert re.search(r"\d+ passed", output)


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
def test_tfa_own_weight_decay_tests_pass_against_optcompat_tfa(host, tmp_path):
    """TFA's own weight_decay_optimizers_test.py at the env's release: every test that passes
    with TFA passes with optcompat.tfa (AdamW, SGDW, extend_with_decoupled_weight_decay,
    decay_var_list, callables, schedules, serialization, fit)."""
    tag = "v" + ENV.versions["tensorflow_addons"]
    path = os.path.join(PEER_CACHE, "tensorflow+addons", tag, TFA_FILE)
    if not os.path.exists(path):
        not_cached("TensorFlow Addons' %s at %s is not cached (its wheels ship no tests): run "
                    "python3 ci/peer_files.py (it needs the internet, or --mirror)" % (TFA_FILE, tag))
    source = open(path).read()
    name = os.path.basename(TFA_FILE)
    rc, theirs, output = run_suite(tmp_path, name, False, source, TFA_IMPORT, TFA_CONFTEST)
    passing = sorted(t for t, outcome in theirs.items() if outcome == "passed")
    assert passing, "TFA's own classes pass none of their tests here: %s\n%s" % (theirs, output)
    rc, ours, output = run_suite(tmp_path, name, True, source, TFA_IMPORT, TFA_CONFTEST)
    assert set(ours) == set(theirs), output
    failed = sorted(t for t in passing if ours[t] != "passed")
    assert not failed, "against optcompat.tfa, %d of the %d tests TFA passes fail: %s\n%s" % (
        len(failed), len(passing), failed, output)
    extra = sorted(t for t, outcome in ours.items() if outcome == "passed" and t not in passing)
    print("TFA %s %s: %d of %d tests pass with TFA, the same %d with optcompat.tfa%s" % (
        tag, name, len(passing), len(theirs), len(passing),
        "; %d more pass with optcompat.tfa only: %s" % (len(extra), extra) if extra else ""))


# Where TensorFlow Addons cannot install (TF 2.16+, Keras 3 as tf.keras), its file runs with what it
# imports from TFA besides the optimizers -- its test utilities and its conftest's fixture and
# marker -- written here (TFA_UTILS, TFA_KERAS3_CONFTEST), and its control class, TF's OptimizerV2
# SGD (tf.keras.optimizers.legacy: a stub in Keras 3), Keras 3's SGD.
TFA_KERAS3_EDITS = (("from tensorflow_addons.utils import test_utils", "import tfa_test_utils as test_utils"),
                    ("    optimizer_class = tf.keras.optimizers.legacy.SGD",
                     "    optimizer_class = tf.keras.optimizers.SGD"))
TFA_UTILS = '''"""TensorFlow Addons' test utilities that its weight_decay_optimizers_test.py calls."""
import numpy as np
import tensorflow as tf


def is_gpu_available():
    return bool(tf.config.list_physical_devices("GPU"))


def assert_allclose_according_to_type(a, b, rtol=1e-6, atol=1e-6, float_rtol=1e-6, float_atol=1e-6,
                                      half_rtol=1e-3, half_atol=1e-3):
    """np.testing.assert_allclose with the tolerance of the wider of float32 / float16 present."""
    a, b = np.asarray(a), np.asarray(b)
    if np.float32 in (a.dtype, b.dtype):
        rtol, atol = max(rtol, float_rtol), max(atol, float_atol)
    if np.float16 in (a.dtype, b.dtype):
        rtol, atol = max(rtol, half_rtol), max(atol, half_atol)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
'''
TFA_KERAS3_CONFTEST = '''import pytest
import tensorflow as tf


def pytest_configure(config):
    config.addinivalue_line("markers", "with_device(devices): TFA's device marker (the CPU here)")


@pytest.fixture(params=["eager_mode", "tf_function"])
def maybe_run_functions_eagerly(request):
    tf.config.run_functions_eagerly(request.param == "eager_mode")
    yield
    tf.config.run_functions_eagerly(False)
'''
# On Keras 3 with jax or torch (no TensorFlow to run it with) the file's TensorFlow calls go to Keras 3:
# variables and constants of the backend, Keras's models, losses, optimizers and schedules; Keras 3 has
# no sparse gradients there, so its IndexedSlices cases skip
TFA_KERAS3_TF = '''"""What TFA's weight_decay_optimizers_test.py calls as ``tf``, in Keras 3 (jax, torch)."""
import keras
import numpy as np
import pytest


class _DType(object):
    def __init__(self, name):
        self.name, self.as_numpy_dtype = name, getattr(np, name)

    def __repr__(self):
        return "tf.%s" % self.name


half, float32, float64 = _DType("float16"), _DType("float32"), _DType("float64")


def _numpy_dtype(dtype):
    return None if dtype is None else getattr(dtype, "as_numpy_dtype", dtype)


def Variable(initial_value, name=None, dtype=None):
    value = np.asarray(initial_value, dtype=_numpy_dtype(dtype))
    if value.dtype == np.float64 and dtype is None and not isinstance(initial_value, np.ndarray):
        value = value.astype(np.float32)  # tf.Variable([1.0]) is float32
    return keras.Variable(value, name=name, dtype=value.dtype.name)


def constant(value, shape=None, dtype=None):
    value = np.asarray(value, dtype=_numpy_dtype(dtype))
    if value.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
        value = value.astype(np.float32)
    return keras.ops.convert_to_tensor(value if shape is None else np.reshape(value, shape))


def IndexedSlices(values, indices, dense_shape):
    pytest.skip("Keras 3 on %s has no sparse gradients (tf.IndexedSlices)" % keras.backend.backend())


keras = keras
optimizers = keras.optimizers
'''
# Its tests with callable beta_1 / beta_2 / momentum (OptimizerV2's _set_hyper takes them; Keras 3's
# own optimizers do not): refused on Keras 3, the error naming the argument
TFA_CALLABLE_HYPERS = ("test_basic_callable_params_adamw", "test_basic_callable_params_sgdw")


# NumPy 1 computes the file's float16 reference in float16, op by op (value-based casting; NumPy 2
# promotes it to float64 through the float64 scalars): Keras 3 on torch steps float16 weights
# through torch's fused AdamW kernel, float32 inside, and lands 3 float16 ulps from that reference
# (measured 2.906 vs 2.912 after 3 steps; the float64 truth 2.9079) -- the NumPy 1 envs (Keras 3.0-3.3)
# skip it on torch.
NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


@pytest.mark.families("keras3")
@pytest.mark.applies(lambda facts, params: (facts.backend != "tensorflow" or facts.at(tensorflow=">=2.16"))
                     and (facts.backend != "torch" or NUMPY_2)
                     # the env's TF_USE_LEGACY_KERAS=1 makes the file's tf.keras tf_keras, not Keras 3
                     and os.environ.get("TF_USE_LEGACY_KERAS") != "1")
def test_tfa_own_weight_decay_tests_on_keras3(host, tmp_path):
    """TFA v0.23.0's weight_decay_optimizers_test.py (its last release) against optcompat.tfa on
    Keras 3, where TFA does not install -- with TensorFlow (TF 2.16+), its test utilities written
    here; on jax and torch its TensorFlow calls made Keras 3's too (TFA_KERAS3_TF: its sparse
    cases skip, Keras 3 has no sparse gradients there): every test passes but those giving
    callable betas / momentum, which are refused with the argument named, as Keras 3's own
    optimizers refuse them."""
    tag = "v0.23.0"
    path = os.path.join(PEER_CACHE, "tensorflow+addons", tag, TFA_FILE)
    if not os.path.exists(path):
        not_cached("TensorFlow Addons' %s at %s is not cached (its wheels ship no tests): run "
                    "python3 ci/peer_files.py (it needs the internet, or --mirror)" % (TFA_FILE, tag))
    source = open(path).read()
    with_tf = host.backend == "tensorflow"
    edits = TFA_KERAS3_EDITS if with_tf else TFA_KERAS3_EDITS + (
        ("import tensorflow as tf\n", "import tfa_keras3_tf as tf\n"),
        ('importlib.util.find_spec("tensorflow.keras.optimizers.legacy") is not None', "False"))
    for old, new in edits:
        assert source.count(old) == 1, "TFA's file no longer has %r" % old
        source = source.replace(old, new)
    name = os.path.basename(TFA_FILE)
    files = {"tfa_test_utils.py": TFA_UTILS if with_tf else TFA_UTILS.replace("import tensorflow as tf\n", "").replace(
        'bool(tf.config.list_physical_devices("GPU"))', "False")}
    if not with_tf:
        files["tfa_keras3_tf.py"] = TFA_KERAS3_TF
    conftest = TFA_KERAS3_CONFTEST if with_tf else TFA_KERAS3_CONFTEST.replace("import tensorflow as tf\n", "").replace(
        '    tf.config.run_functions_eagerly(request.param == "eager_mode")\n', "").replace(
        "    tf.config.run_functions_eagerly(False)\n", "")
    if host.backend == "jax":  # its float64 cases: JAX computes in float32 unless x64 is on
        conftest = "import jax\n\njax.config.update('jax_enable_x64', True)\n" + conftest
    rc, ours, output = run_suite(tmp_path, name, True, source, TFA_IMPORT, conftest, files)
    refused = sorted(t for t in ours if t.split("[")[0] in TFA_CALLABLE_HYPERS)
    sparse = sorted(t for t in ours if "sparse" in t)
    failed = sorted(t for t, outcome in ours.items() if outcome != "passed" and t not in refused
                    and not (not with_tf and t in sparse and outcome == "skipped"))
    assert len(ours) >= 60 and len(refused) == 6 and not failed, "%d of %d fail: %s\n%s" % (
        len(failed), len(ours), failed, output)
    assert with_tf or all(ours[t] == "skipped" for t in sparse), output
    messages = {case.get("name"): "".join(f.get("message", "") for f in case if f.tag == "failure")
                for case in ElementTree.parse(str(tmp_path / "optcompat" / "junit.xml")).iter("testcase")}
    for test in refused:
        argument = "beta_1" if "adamw" in test else "momentum"
        assert "ArgumentTypeError: `%s` must be a real number" % argument in messages[test], messages[test]
    skipped = 0 if with_tf else len(sparse)
    print("TFA %s %s on Keras 3 (%s): %d of %d pass against optcompat.tfa; %d refuse callable betas / "
          "momentum; %d sparse skipped" % (tag, name, host.backend, len(ours) - len(refused) - skipped, len(ours),
                                           len(refused), skipped))


KERAS_ADAMW = ("OverLordGoldDragon+keras-adamw", "v1.38")
KERAS_ADAMW_FILES = ("tests/test_optimizers.py", "tests/backend.py", "tests/__init__.py")
KERAS_ADAMW_IMPORT = ("from keras_adamw import", "from optcompat.keras_adamw import")
# TF 2.11+: tf.keras.optimizers are Keras 2's new optimizers, which take no `decay` (the test's
# control optimizers pass it); keras-adamw's TF_KERAS=1 classes were OptimizerV2, now .legacy
KERAS_ADAMW_CONTROLS = ("from tensorflow.keras.optimizers import Adam, Nadam, SGD",
                        "from tensorflow.keras.optimizers.legacy import Adam, Nadam, SGD")


# Keras 3: keras-adamw's tests/backend.py (its environment: TensorFlow's flags, tf.keras imports)
# in Keras 3's terms, the same names -- K with the Keras 2 backend functions the tests call
# (set_value, batch_get_value, clear_session), the layers, and the control optimizers taking
# keras-adamw's `lr` (Keras 3's take `learning_rate`; `decay` they ignore with a warning, as ever)
# and an int momentum (Keras 3's SGD refuses one)
KERAS3_BACKEND = '''
import types

import keras
import numpy as np

TF_KERAS, TF_EAGER, TF_2 = True, True, True
K = types.SimpleNamespace(
    set_value=lambda variable, value: variable.assign(np.asarray(value, dtype=variable.dtype)),
    get_value=lambda x: keras.ops.convert_to_numpy(x),
    batch_get_value=lambda xs: [keras.ops.convert_to_numpy(x) for x in xs],
    clear_session=keras.backend.clear_session)
from keras.layers import Input, Dense, GRU, Bidirectional, Embedding
from keras.models import Model, load_model
from keras.regularizers import l1, l2, l1_l2
from keras.constraints import MaxNorm as maxnorm


def _control(cls):
    def make(lr=0.001, **kwargs):
        if "momentum" in kwargs:  # Keras 3's SGD takes a float only (the tests give momentum=0)
            kwargs["momentum"] = float(kwargs["momentum"])
        return cls(learning_rate=lr, **kwargs)
    return make


Adam, Nadam, SGD = _control(keras.optimizers.Adam), _control(keras.optimizers.Nadam), _control(keras.optimizers.SGD)
from keras_adamw import get_weight_decays, fill_dict_in_order
from keras_adamw import reset_seeds, K_eval
'''
# ... and in tests/test_optimizers.py: no TensorFlow (it is used only for Keras 2 in graph mode),
# and `decay` 0 on optcompat's side too where the tests give it (test_misc, test_control): Keras
# 3's own Adam / Nadam / SGD, the controls, ignore it; optcompat.keras_adamw refuses a nonzero
# one outside OptimizerV2 (it names InverseTimeDecay) -- so both sides run without, alike.
# Its save / load check saves .keras, not .h5: Keras 3 brings an optimizer back from .h5 built for no
# variables, its own too (tests/deviations.py, ("save", "h5")), and cannot load the .h5 of a masking
# Embedding at all ("Unknown layer: 'NotEqual'").
KERAS3_EDITS = (("import tensorflow as tf\n", "tf = None  # Keras 3: no TensorFlow\n"),
                ("test_name = 'test__%f{}.h5'", "test_name = 'test__%f{}.keras'"),
                ("'decay': 1e-3,", "'decay': 0.0,"),
                ("decay=1e-3,", "decay=0.0,"))


def run_keras_adamw_suite(tmp_path, ours, eager, controls_legacy, keras3=False):
    """keras-adamw's tests/ (its import made optcompat.keras_adamw's where ``ours``) run by pytest
    in a fresh process, as its CI ran it (TF_KERAS=1, TF_EAGER): (rc, {test: outcome}, output).
    ``keras3``: with KERAS3_BACKEND and KERAS3_EDITS."""
    folder = tmp_path / ("optcompat" if ours else "peer") / "tests"
    folder.mkdir(parents=True)
    for path in KERAS_ADAMW_FILES:
        source = open(os.path.join(PEER_CACHE, KERAS_ADAMW[0], KERAS_ADAMW[1], path)).read()
        if keras3 and path == "tests/backend.py":
            source = KERAS3_BACKEND
        elif keras3 and path == "tests/test_optimizers.py":
            for old, new in KERAS3_EDITS:
                assert old in source, "keras-adamw's %s no longer has %r" % (path, old)
                source = source.replace(old, new)
        if ours and path != "tests/__init__.py":
            assert KERAS_ADAMW_IMPORT[0] in source, "%s no longer imports keras_adamw" % path
            source = source.replace(KERAS_ADAMW_IMPORT[0], KERAS_ADAMW_IMPORT[1])
        if controls_legacy and path == "tests/backend.py":
            assert source.count(KERAS_ADAMW_CONTROLS[0]) == 1
            source = source.replace(*KERAS_ADAMW_CONTROLS)
        (folder / os.path.basename(path)).write_text(source)
    if importlib.util.find_spec("termcolor") is None:  # the tests' colored print (a test dependency)
        (folder / "termcolor.py").write_text("def cprint(text, *args, **kwargs):\n    print(text)\n")
    report = folder / "junit.xml"
    env = dict(os.environ, TF_KERAS="1", TF_EAGER="1" if eager else "0", USE_GPU="0")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder),
                           "--junitxml", str(report), str(folder / "test_optimizers.py")],
                          cwd=str(folder), **CAPTURE, timeout=900, env=env)
    outcomes = {}
    for case in ElementTree.parse(str(report)).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    return proc.returncode, outcomes, proc.stdout[-6000:] + proc.stderr[-3000:]


@pytest.mark.families("legacy", "keras3")
@pytest.mark.applies(lambda facts, params: (facts.family == "legacy" and (facts.at(tensorflow="<2.4") or (
    facts.at(tensorflow=">=2.15,<2.16") and params["mode"] == "eager"))) or (
    facts.family == "keras3" and facts.family == ENV.default and params["mode"] == "eager"
    and facts.at(keras=">=3.3")))  # Keras 3.0 cannot load its Bidirectional GRU from .keras, own Adam too
@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_keras_adamw_own_tests_pass_against_optcompat_keras_adamw(host, mode, tmp_path):
    """keras-adamw 1.38's tests/test_optimizers.py (save/load, warm restarts with annealing,
    lr_multipliers, decays from the model, controls against Adam / Nadam / SGD, updates at
    eta_t = 0), with ``from keras_adamw import`` made optcompat.keras_adamw's: on TF 2.2-2.3 in
    graph and eager mode (keras-adamw's CI: TF_KERAS=1, TF_EAGER=0 and 1), every test that passes
    with keras-adamw itself passes; on TF 2.15 (eager) all of them, the controls being
    tf.keras.optimizers.legacy's (the new optimizers take no ``decay``); on Keras 3 (jax, torch,
    tensorflow) all of them with its backend.py in Keras 3's terms and ``decay`` 0 on both sides
    (KERAS3_BACKEND, KERAS3_EDITS)."""
    if not os.path.exists(os.path.join(PEER_CACHE, KERAS_ADAMW[0], KERAS_ADAMW[1], KERAS_ADAMW_FILES[0])):
        not_cached("keras-adamw's tests at %s are not cached (its sdist ships none): run python3 "
                    "ci/peer_files.py (it needs the internet, or --mirror)" % KERAS_ADAMW[1])
    keras3 = host.family == "keras3"
    eager, controls_legacy = mode == "eager", not keras3 and host.tf_version >= (2, 11)
    theirs = None
    if importlib.util.find_spec("keras_adamw") is not None:
        rc, theirs, output = run_keras_adamw_suite(tmp_path, False, eager, controls_legacy)
        assert theirs and set(theirs.values()) == {"passed"}, "keras-adamw fails its own tests: %s\n%s" % (
            theirs, output)
    rc, ours, output = run_keras_adamw_suite(tmp_path, True, eager, controls_legacy, keras3)
    failed = sorted(t for t, outcome in ours.items() if outcome != "passed")
    assert ours and (theirs is None or set(ours) == set(theirs)), output
    assert rc == 0 and not failed, "against optcompat.keras_adamw, %d of %d fail: %s\n%s" % (
        len(failed), len(ours), failed, output)
    print("keras-adamw %s tests/test_optimizers.py (%s): %d of %d pass against optcompat.keras_adamw%s" % (
        KERAS_ADAMW[1], mode, len(ours), len(ours), "" if theirs is None else ", as with keras-adamw"))


KERAS_ADAMW_EXAMPLE = "example.py"
# keras-adamw's example as a script: TF 2.x graph mode where keras-adamw ran it (TF <= 2.3), its
# training cell only (the next cell plots), with its data drawn from seeded generators, the
# losses kept; what the example prints is the same.  These edits are the harness's, made alike
# on both sides (example_sources); optcompat's side differs from keras-adamw's only in the
# module name of the example's two keras_adamw import lines.
EXAMPLE_DRIVER = r"""
import json, os, random, sys
import numpy as np
source, out, graph = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if os.environ.get("KERAS_BACKEND") in (None, "tensorflow") or graph:
    import tensorflow as tf
    if graph:
        tf.compat.v1.disable_eager_execution()
    tf.random.set_seed(0)
np.random.seed(0)
random.seed(0)
namespace = {"LOSSES": [], "__name__": "example"}
exec(compile(open(source).read(), "example.py", "exec"), namespace)
json.dump({"losses": namespace["LOSSES"], "eta": [float(np.asarray(e)) for e in namespace["eta_history"]],
           "lr": [float(np.asarray(r)) for r in namespace["lr_history"]]}, open(out, "w"))
"""
KERAS_ADAMW_IMPORT_LINE = re.compile(r"^(from|import) keras_adamw(\.\w+)*( |$)")


def example_sources(graph, tf_keras):
    """keras-adamw's example.py as the driver runs it: (keras-adamw's, optcompat's), the second
    differing from the first only in its keras_adamw import lines, and there only in the module
    name (``keras_adamw`` -> ``optcompat.keras_adamw``; the example has two: ``from keras_adamw
    import AdamW``, ``from keras_adamw.utils import K_eval``) -- difflib holds the diff to that."""
    code = open(os.path.join(PEER_CACHE, KERAS_ADAMW[0], KERAS_ADAMW[1], KERAS_ADAMW_EXAMPLE)).read()
    cells = code.split("#%%")
    training = cells[0] + cells[1] + cells[2]  # imports, the model, the training loop
    training = training.replace("loss = model.train_on_batch(x, y)",
                                "loss = model.train_on_batch(x, y); LOSSES.append(float(loss))")
    if not graph:  # keras-adamw sets lr_t inside its traced step: eagerly it cannot be read
        training = training.replace("lr_history.append(K_eval(model.optimizer.lr_t, K))",
                                    "lr_history.append(0.0)")
    if tf_keras:  # keras 2.x standalone imports -> tf.keras
        training = training.replace("from keras.", "from tensorflow.keras.").replace(
            "from keras import backend", "from tensorflow.keras import backend")
    training = training.replace("import matplotlib.pyplot as plt\n", "").replace(
        "import matplotlib.ticker as ticker\n", "")
    imports = [line for line in training.splitlines() if KERAS_ADAMW_IMPORT_LINE.match(line)]
    assert imports == ["from keras_adamw import AdamW", "from keras_adamw.utils import K_eval"], imports
    ours = "\n".join(line.replace("keras_adamw", "optcompat.keras_adamw", 1)
                     if KERAS_ADAMW_IMPORT_LINE.match(line) else line for line in training.splitlines()) + "\n"
    diff = [d for d in difflib.unified_diff(training.splitlines(), ours.splitlines(), lineterm="", n=0)
            if d[:1] in "+-" and d[:3] not in ("---", "+++")]
    assert diff == ["-" + line for line in imports] + [
        "+" + line.replace("keras_adamw", "optcompat.keras_adamw", 1) for line in imports], diff
    return training, ours


def run_keras_adamw_example(tmp_path, ours, graph, tf_keras):
    """keras-adamw's example.py (its module name made optcompat's where ``ours``) in a fresh
    process: its losses, eta_t and lr_t histories."""
    tmp_path.mkdir(exist_ok=True)
    source = tmp_path / ("example_optcompat.py" if ours else "example_keras_adamw.py")
    source.write_text(example_sources(graph, tf_keras)[1 if ours else 0])
    driver, out = tmp_path / "driver.py", tmp_path / ("ours.json" if ours else "theirs.json")
    driver.write_text(EXAMPLE_DRIVER)
    env = dict(os.environ, TF_KERAS="1")
    proc = subprocess.run([sys.executable, str(driver), str(source), str(out), "1" if graph else "0"],
                          cwd=str(tmp_path), **CAPTURE, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    import json

    return json.loads(out.read_text()), proc.stdout


@pytest.mark.applies(lambda facts, params: facts.family == ENV.default and (
    facts.at(tensorflow="<2.4") or (params["mode"] == "eager" and (
        facts.at(tensorflow=">=2.15,<2.16") or facts.family == "keras3"))))
@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_keras_adamw_example_with_its_import_changed(host, mode, tmp_path):
    """keras-adamw's example.py (an LSTM with L1/L2 regularizers, AdamW(model=...), lr_multipliers,
    cosine annealing over three periods with autorestart) with its module name made optcompat's --
    its two import lines ``from keras_adamw import AdamW`` and ``from keras_adamw.utils import
    K_eval`` made ``from optcompat.keras_adamw ...`` and ``from optcompat.keras_adamw.utils ...``,
    nothing else (example_sources holds the diff to that) -- its data seeded.  On TF 2.2-2.3 with
    eager steps (tf.function) its 72 losses equal keras-adamw's own within 1e-5 (relative;
    measured 8.6e-8 on TF 2.3), and its eta_t history.  In graph mode (``disable_eager_execution``,
    keras-adamw's era) it runs and optcompat's losses are the same in two runs; keras-adamw's are
    not (measured on TF 2.3: 7.5e-5 apart, relative): its eta_t update waits for t_cur's only, so
    a variable stepped after it may read the next eta_t -- optcompat orders it after every
    variable.  On TF 2.15 and Keras 3 it runs unchanged but for the module name.  (keras-adamw's
    own lr_t cannot be read in eager mode: that plot line records 0 for it, on both sides.)"""
    if not os.path.exists(os.path.join(PEER_CACHE, KERAS_ADAMW[0], KERAS_ADAMW[1], KERAS_ADAMW_EXAMPLE)):
        not_cached("keras-adamw's example.py at %s is not cached: run python3 ci/peer_files.py" % KERAS_ADAMW[1])
    tf_keras = host.family != "keras3"
    graph = mode == "graph"
    ours, output = run_keras_adamw_example(tmp_path, True, graph, tf_keras)
    assert len(ours["losses"]) == 72 and "Iter 24 loss" in output and "EPOCH 3 COMPLETED" in output
    import numpy as np

    eta = [0.5 * (1 + np.cos(np.pi * (s % 24) / 23)) for s in range(1, 73)]  # after each step
    assert np.allclose(ours["eta"], eta, rtol=0, atol=2e-7), ours["eta"]
    assert all(np.isfinite(ours["losses"])) and ours["losses"][-1] < ours["losses"][0] * 10
    if graph:
        again, _ = run_keras_adamw_example(tmp_path / "again", True, graph, tf_keras)
        assert again["losses"] == ours["losses"]
        return
    if importlib.util.find_spec("keras_adamw") is None:
        return
    theirs, _ = run_keras_adamw_example(tmp_path, False, graph, tf_keras)
    losses = np.array(ours["losses"]), np.array(theirs["losses"])
    error = np.max(np.abs(losses[0] - losses[1]) / np.abs(losses[1]))
    assert error <= 1e-5, "keras-adamw's example: losses %.3g apart (relative)" % error
    assert np.allclose(ours["eta"], theirs["eta"], rtol=0, atol=2e-7)
    print("keras-adamw's example.py: 72 losses within %.2g (relative) of keras-adamw's own" % error)
