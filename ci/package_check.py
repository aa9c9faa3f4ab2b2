#!/usr/bin/env python3
"""What the built distributions hold (the tox env ``package`` runs it after ``twine check``):
the wheel holds the package only (with py.typed, the stubs __init__.pyi and schedules.pyi, and
the license); the sdist holds the package and its documents, and no tests (the suite runs from
the repository); the metadata names an author and a maintainer, and its Python classifiers are
the Pythons tox.ini's matrix runs (`[testenv] base_python`, and the Python an env makes its
own venv with, as tf22-cp36 does).

    python ci/package_check.py DIST_FOLDER"""
import configparser
import email
import glob
import os
import re
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def modules():
    """The package's modules in this checkout (``optcompat/tfa/optimizers/__init__.py``, ...): every
    subpackage must reach the distributions (setup.cfg's ``packages = find:``)."""
    out = []
    for folder, _, files in os.walk(os.path.join(ROOT, "optcompat")):
        if "__pycache__" not in folder:
            out += [os.path.relpath(os.path.join(folder, f), ROOT).replace(os.sep, "/") for f in files
                    if f.endswith(".py")]
    return sorted(out)


def matrix_pythons():
    """The Python versions tox.ini's test envs run on: `[testenv] base_python`, and the Python
    an env makes its own venv with (`uv venv --python python3.6`: tf22-cp36)."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(os.path.join(ROOT, "tox.ini"))
    own = "".join(tox[s].get("commands_pre", "") for s in tox.sections() if s.startswith("testenv:"))
    found = re.findall(r"python(3\.\d+)", tox["testenv"]["base_python"])
    found += re.findall(r"--python python(3\.\d+)", own)
    return sorted(set(found), key=lambda v: int(v[2:]))


def check_metadata(text):
    """The wheel's METADATA: an author and a maintainer, and a version classifier for exactly
    the Pythons the matrix tests."""
    meta = email.message_from_string(text)
    assert meta.get("Author") and meta.get("Maintainer"), "no Author / Maintainer in the metadata"
    classified = sorted((c.rsplit("::", 1)[1].strip() for c in meta.get_all("Classifier")
                         if re.match(r"Programming Language :: Python :: 3\.\d+$", c)), key=lambda v: int(v[2:]))
    assert classified == matrix_pythons(), ("Python classifiers %s, but tox.ini's matrix runs %s: make "
                                            "setup.cfg's classifiers those" % (classified, matrix_pythons()))
    return classified


def main(folder):
    wheels, sdists = glob.glob(os.path.join(folder, "*.whl")), glob.glob(os.path.join(folder, "*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, (wheels, sdists)
    names = zipfile.ZipFile(wheels[0]).namelist()
    tops = sorted({n.split("/")[0] for n in names})
    assert [t for t in tops if not t.endswith(".dist-info")] == ["optcompat"], tops
    for needed in ("optcompat/py.typed", "optcompat/__init__.pyi", "optcompat/schedules.pyi",
                   "optcompat/_selftest_data.py"):
        assert needed in names, needed
    assert any(n.endswith("/LICENSE") for n in names), "no LICENSE in the wheel"
    sources = modules()
    assert "optcompat/tfa/optimizers/weight_decay_optimizers.py" in sources, "run from the checkout"
    missing = [m for m in sources if m not in names]
    assert not missing, "modules not in the wheel: %s" % missing
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    pythons = check_metadata(zipfile.ZipFile(wheels[0]).read(metadata).decode("utf-8"))
    members = [m.split("/", 1)[-1] for m in tarfile.open(sdists[0]).getnames()]
    assert not [m for m in members if m.startswith("tests") or "/test_" in m], "the sdist ships tests"
    missing = [m for m in sources if m not in members]
    assert not missing, "modules not in the sdist: %s" % missing
    for needed in ("LICENSE", "README.md", "CHANGELOG.md", "optcompat/py.typed", "optcompat/__init__.pyi"):
        assert needed in members, needed
    print("package_check: wheel %s: %d files, only optcompat/, its %d modules; sdist %s: %d members, no tests"
          % (os.path.basename(wheels[0]), len(names), len(sources), os.path.basename(sdists[0]), len(members)))
    print("package_check: wheel %s: %d files, only optcompat/; sdist %s: %d members, no tests; classifiers "
          "Python %s = tox.ini's matrix" % (os.path.basename(wheels[0]), len(names), os.path.basename(sdists[0]),
                                             len(members), ", ".join(pythons)))


if __name__ == "__main__":
    main(sys.argv[1])
