"""`import optcompat` imports no framework; a vendored copy works under another name."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import optcompat

PKG = os.path.dirname(optcompat.__file__)
HEAVY = ("tensorflow", "keras", "tf_keras", "jax", "torch")


def python(code, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, **env), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_import_loads_no_framework():
    out = python("import sys, json, optcompat; optcompat.describe(); optcompat.available_families();"
                 "print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_module_main_prints_detection():
    out = subprocess.run([sys.executable, "-m", "optcompat"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert set(info) >= {"default_family", "families", "versions", "python"}


def test_vendored_copy_works(tmp_path, host):
    dest = tmp_path / "myproj" / "_vendor" / "optcompat"
    shutil.copytree(PKG, str(dest), ignore=shutil.ignore_patterns("__pycache__"))
    for d in (tmp_path / "myproj", tmp_path / "myproj" / "_vendor"):
        (d / "__init__.py").write_text("")
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "import myproj._vendor.optcompat as oc\n"
        "assert 'optcompat' not in sys.modules, 'the vendored copy imported the installed one'\n"
        "assert not [m for m in %r if m in sys.modules]\n"
        "cls = oc.family_module(%r).AdamW\n"
        "assert cls.__module__.startswith('myproj._vendor.optcompat.'), cls.__module__\n"
        "import numpy as np\n"
        "opt = cls(learning_rate=0.1, weight_decay=0.5)\n"
        "print(type(opt).__mro__[1].__module__)\n"
    ) % (str(tmp_path), HEAVY, host.family)
    python(code)


def test_family_module_for_missing_host_names_the_releases():
    missing = [f for f in ("keras3", "keras2", "legacy") if f not in optcompat._detect.host_modules()]
    if not missing:
        pytest.skip("every host family is installed in this environment")
    f = missing[0]
    code = "import optcompat.%s" % f
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    err = out.stderr.strip().splitlines()[-1]
    assert "ImportError" in err or "ModuleNotFoundError" in err
    if optcompat._detect.adapter_available(f):
        assert f in err and "found in" in err, err
