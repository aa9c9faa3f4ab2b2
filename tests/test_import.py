"""`import optcompat` imports no framework; a vendored copy works under another name, also
where `packaging` cannot be imported."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import optcompat
import reference
from support import CAPTURE, ENV, TOL, applies

PKG = os.path.dirname(optcompat.__file__)
HEAVY = ("tensorflow", "keras", "tf_keras", "jax", "torch")


def python(code, **env):
    out = subprocess.run([sys.executable, "-c", code], **CAPTURE,
                         env=dict(os.environ, **env), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_import_loads_no_framework():
    out = python("import sys, json, optcompat; optcompat.describe(); optcompat.available_families();"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_state_module_loads_no_framework():
    """optcompat.state reads and writes its files with NumPy alone (a host is imported only to
    reach an optimizer, or to read a TF checkpoint)."""
    out = python("import sys, json, optcompat.state, optcompat.state.__main__;"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_schedules_module_loads_no_framework():
    """optcompat.schedules resolves its classes on first use (the default family's Keras)."""
    out = python("import sys, json, optcompat.schedules; from optcompat import _schedules;"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_tfa_module_loads_no_framework():
    """optcompat.tfa (TensorFlow Addons' names) resolves its classes on first use."""
    out = python("import sys, json, optcompat.tfa; from optcompat.tfa import DecoupledWeightDecayExtension;"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


@pytest.mark.applies(lambda facts, params: facts.family == ENV.default)
def test_schedules_are_the_default_familys_and_load_in_a_fresh_process(host, tmp_path):
    """``optcompat.schedules.X`` is the default family's class, registered as ``optcompat>X``:
    a fresh process that imports optcompat deserializes it by that name."""
    from optcompat import schedules

    s = schedules.CosineDecayRestarts(0.1, 10)
    assert isinstance(s, host.keras.optimizers.schedules.LearningRateSchedule)
    assert host.registered_name(type(s)) == "optcompat>CosineDecayRestarts"
    config = json.dumps(host.keras.optimizers.schedules.serialize(s))
    out = python("import json, optcompat, %s as k; s = k.optimizers.schedules.deserialize(json.loads(%r));"
                 "print(type(s).__module__, type(s).__name__, float(s(12)))" % (host.namespace, config))
    assert out.split()[-3:-1] == ["optcompat.schedules", "CosineDecayRestarts"]
    assert float(out.split()[-1]) == pytest.approx(float(host.value(s(12))), abs=1e-7)


def test_module_main_prints_detection():
    out = subprocess.run([sys.executable, "-m", "optcompat"], **CAPTURE, timeout=300)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert set(info) >= {"default_family", "families", "versions", "python"}


def vendor(tmp_path):
    """optcompat/ copied to ``tmp_path`` as the package myproj._vendor.optcompat."""
    dest = tmp_path / "myproj" / "_vendor" / "optcompat"
    shutil.copytree(PKG, str(dest), ignore=shutil.ignore_patterns("__pycache__"))
    for d in (tmp_path / "myproj", tmp_path / "myproj" / "_vendor"):
        (d / "__init__.py").write_text("")


def test_vendored_copy_works(tmp_path, host):
    vendor(tmp_path)
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "import myproj._vendor.optcompat as oc\n"
        "assert 'optcompat' not in sys.modules, 'the vendored copy imported the installed one'\n"
        "assert not [m for m in %r if m in sys.modules]\n"
        "cls = oc.family_module(%r).AdamW\n"
        "assert cls.__module__.startswith('myproj._vendor.optcompat.'), cls.__module__\n"
        "import numpy as np\n"
        "opt = cls(learning_rate=0.1, weight_decay=0.5)\n"
        "import myproj._vendor.optcompat.state as st\n"  # its family hooks, found relatively
        "access, info = st._access.describe(opt)\n"
        "assert type(access).__module__.startswith('myproj._vendor.optcompat.'), type(access).__module__\n"
        "assert (access.family, info['kind'], info['slots']) == (%r, 'adam', ['m', 'v']), (access.family, info)\n"
        "assert 'optcompat' not in sys.modules\n"
        "print(type(opt).__mro__[1].__module__)\n"
    ) % (str(tmp_path), HEAVY, host.family, host.family)
    python(code)


# A finder installed first: `packaging` (and every `packaging.*`) cannot be imported, except by
# a host framework that needs it (Keras 3.0-3.3 import it without declaring it).
NO_PACKAGING = textwrap.dedent("""
    import sys

    class NoPackaging(object):
        def find_spec(self, name, path=None, target=None):
            if name != "packaging" and not name.startswith("packaging."):
                return None
            f = sys._getframe(1)
            while f is not None and f.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
                f = f.f_back
            importer = f.f_globals.get("__name__", "") if f is not None else ""
            if importer.split(".")[0] in ("keras", "tf_keras", "tensorflow", "jax", "torch"):
                return None
            raise ModuleNotFoundError("No module named %r (blocked by the test; imported from %s)"
                                      % (name, importer), name=name)

    sys.meta_path.insert(0, NoPackaging())
""")
STEP = textwrap.dedent("""
    import json
    sys.path.insert(0, sys.argv[1])
    family, x0, g = sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    import myproj._vendor.optcompat as oc
    assert "optcompat" not in sys.modules, "the vendored copy imported the installed one"
    assert "packaging" not in sys.modules, "packaging was imported"
    assert oc.default_family() == family, (oc.default_family(), family)
    cls = oc.family_module(family).AdamW
    assert cls.__module__.startswith("myproj._vendor.optcompat."), cls.__module__
    import numpy as np
    if family == "keras3":
        import keras
        var = keras.Variable(np.array(x0, np.float32))
        grad = keras.ops.convert_to_tensor(np.array(g, np.float32))
        value = lambda: keras.ops.convert_to_numpy(var)
    else:
        import tensorflow as tf
        var, grad = tf.Variable(np.array(x0, np.float32)), tf.constant(np.array(g, np.float32))
        value = lambda: var.numpy()
    opt = cls(learning_rate=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.apply_gradients([(grad, var)])
    print("VALUE " + json.dumps([float(x) for x in np.asarray(value()).ravel()]))
""")


@applies(lambda facts, params: ENV.default is not None)
def test_vendored_copy_without_packaging_steps_as_the_reference(tmp_path):
    """The vendored copy imports and trains where `packaging` cannot be imported: an AdamW of
    the env's default family takes 3 steps on a real variable, within TOL of the float64
    reference."""
    vendor(tmp_path)
    x0, g = [1.0, -2.0, 0.5], [0.3, 0.1, -0.4]
    out = subprocess.run(
        [sys.executable, "-c", NO_PACKAGING + STEP, str(tmp_path), ENV.default, json.dumps(x0), json.dumps(g)],
        **CAPTURE, env=dict(os.environ), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    value = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("VALUE ")][-1][6:])
    ref = reference.adamw(np.array(x0), [np.array(g)] * 3, 0.1, weight_decay=0.5)[-1]
    assert np.max(np.abs(np.array(value) - ref)) <= TOL
    assert np.max(np.abs(ref - np.array(x0))) > 0.1  # the steps moved the weights


@applies(lambda facts, params: set(ENV.families) != {"keras3", "keras2", "legacy"})
def test_family_module_for_missing_host_names_the_releases():
    """(Collected where the env lacks a family.)"""
    missing = [f for f in ("keras3", "keras2", "legacy") if f not in optcompat._detect.host_modules()]
    assert missing, "the env declares %s, but every host family is installed" % ENV.families
    f = missing[0]
    code = "import optcompat.%s" % f
    out = subprocess.run([sys.executable, "-c", code], **CAPTURE, timeout=300)
    assert out.returncode != 0
    err = out.stderr.strip().splitlines()[-1]
    assert "ImportError" in err or "ModuleNotFoundError" in err
    if optcompat._detect.adapter_available(f):
        assert f in err and "found in" in err, err


def test_dir_lists_the_names_resolved_on_first_use():
    out = python("import sys, json, optcompat; names = dir(optcompat);"
                 "print(json.dumps([names, [m for m in %r if m in sys.modules]]))" % (HEAVY,))
    names, loaded = json.loads(out.strip().splitlines()[-1])
    assert {"AdamW", "SGDW", "keras3", "keras2", "legacy", "decoupled", "weight_decays_from"} <= set(names)
    assert loaded == []  # listing them resolves nothing


@pytest.mark.parametrize("family", ["keras3", "keras2", "legacy"])
def test_optcompat_family_chooses_the_default_family(family):
    """OPTCOMPAT_FAMILY makes a family optcompat.AdamW (one this env declares; a bad value is refused)."""
    if family not in ENV.families:
        with pytest.raises(AssertionError, match="OPTCOMPAT_FAMILY|ImportError"):
            python("import optcompat; optcompat.AdamW", OPTCOMPAT_FAMILY=family)
        return
    out = python("import optcompat; print(optcompat.AdamW.__module__)", OPTCOMPAT_FAMILY=family)
    assert out.split()[-1] == "optcompat." + family


def test_a_bad_optcompat_family_is_refused():
    with pytest.raises(AssertionError, match="OPTCOMPAT_FAMILY must be one of"):
        python("import optcompat; optcompat.AdamW", OPTCOMPAT_FAMILY="keras4")
