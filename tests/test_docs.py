"""Docs move with code: the generated tables and stubs are current, the README's claims hold, and
the examples in the README and in the API reference run as a user runs them."""
import ast
import configparser
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import optcompat
from support import CAPTURE
from support import ENV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "optcompat")


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def blocks(text, language):
    return re.findall(r"```%s\n(.*?)```" % language, text, flags=re.S)


def test_generated_docs_and_stubs_are_current():
    """ci/docs.py --check: the generated tables, the stubs the API reference renders, the README's
    links and CHANGELOG.md's form."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "ci", "docs.py"), "--check"],
                         **CAPTURE, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_test_command_is_what_ci_runs():
    """CI (.ci/run) runs the README's test command: the line after '# README test command:'
    there is one of the README's commands, as written."""
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        script = f.read()
    line = re.search(r"# README test command:\n(?:set \+e\n)?(.+)", script).group(1)
    command = line.split(" 2>&1")[0].strip()
    commands = [ln.split("#")[0].strip() for block in blocks(readme(), "bash") for ln in block.splitlines()]
    assert command == "python3 ci/test.py"
    assert command in commands, (command, commands)
    assert "ci/tox -e demo" in commands


def _tox():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(ROOT, "tox.ini"))
    return cfg


def _minor_range(minors):
    low, high = min(minors), max(minors)
    return "%d.%d-%d.%d" % (low + high)


def test_readme_comparison_is_the_matrix():
    """The why-not table's release ranges are tox.ini's: optcompat's row the matrix's TensorFlow
    minors and Keras 3 pins, TensorFlow Addons' and keras-adamw's rows the envs they install in;
    its conventions are optcompat.CONVENTIONS."""
    cfg = _tox()
    envs = re.split(r"[,\s]+", cfg["tox"]["env_list"].strip())
    tf = [tuple(int(p) for p in re.match(r"tf(\d)(\d+)", e).groups()) for e in envs if re.match(r"tf\d+", e)]
    keras = [tuple(int(p) for p in v) for v in re.findall(r"keras==(3)\.(\d+)\.\d+", cfg["testenv"]["deps"])]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| \**`?([^|`*]+?)`?\**(?: `AdamW`)? \|.*$", readme(), re.M)}
    ours = rows["optcompat"]
    assert "TensorFlow %s" % _minor_range(tf) in ours, ours
    assert "Keras %s" % _minor_range(keras) in ours, ours
    assert set(re.findall(r"`([\w-]+)`", ours)) >= set(optcompat.CONVENTIONS), ours

    def installs_in(pattern, text):
        found = set()
        for line in text.splitlines():
            if re.search(pattern, line):
                found |= {tuple(int(p) for p in re.match(r"tf(\d)(\d+)", f).groups())
                          for f in line.split(":")[0].strip().split(",")}
        return found

    tfa = installs_in(r"tensorflow-addons==", cfg["testenv"]["deps"])
    assert "TF %s" % _minor_range(tfa) in rows["TensorFlow Addons"], rows["TensorFlow Addons"]
    assert "no release for TF 2.%d+" % (max(tfa)[1] + 1) in rows["TensorFlow Addons"]
    kadamw = installs_in(r"keras-adamw==", cfg["testenv"]["commands_pre"])
    assert "TF %s" % _minor_range(kadamw) in rows["keras-adamw"], rows["keras-adamw"]
    assert "last release %s" % re.search(r"keras-adamw==([\d.]+)", cfg["testenv"]["commands_pre"]).group(1) \
        in rows["keras-adamw"]


@pytest.mark.skipif(ENV.default is None, reason="the env declares no default family")
@pytest.mark.parametrize("index", range(len(blocks(readme(), "python"))))
def test_readme_python_blocks_run(index, tmp_path):
    """Every python block of the README, as a user pastes it: a fresh process, in every env
    (TensorFlow 2.2 to Keras 3 on each backend).  The quick start trains with the default
    family's optcompat.AdamW; the drop-in imports give the default family's classes."""
    code = blocks(readme(), "python")[index]
    out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), **CAPTURE,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    if "model.fit(" in code:
        module, loss = out.stdout.strip().splitlines()[-1].split()
        assert module == "optcompat." + ENV.default, out.stdout
        assert np.isfinite(float(loss)), out.stdout


def test_readme_has_a_quick_start():
    assert len([b for b in blocks(readme(), "python") if "model.fit(" in b]) == 1


def test_home_page_quick_start_is_the_readmes():
    """docs/index.md shows the README's quick start, word for word: the one the test above runs."""
    with open(os.path.join(ROOT, "docs", "index.md"), encoding="utf-8") as f:
        home = f.read()
    quick = [b for b in blocks(readme(), "python") if "model.fit(" in b]
    assert quick and quick[0] in blocks(home, "python")


def test_site_check_finds_raw_roles_and_private_names(tmp_path):
    """ci/check_site.py (the docs env runs it on the built site) fails on a reST role, a reST
    literal and a private name in the API page, and passes math subscripts and a clean page."""
    sys.path.insert(0, os.path.join(ROOT, "ci"))
    import check_site

    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "index.html").write_text(
        "<p>See :func:<code>get_weight_decays</code> and <code>``t``</code>; base optcompat._common.Decoupled,"
        " class _Optimizer.</p><p>\\(\\mathrm{lr}_t\\)</p><script>var _private = 1;</script>")
    (tmp_path / "index.html").write_text("<p>\\(d_t = \\lambda\\,\\mathrm{lr}_t\\)</p>")
    found = check_site.findings(str(tmp_path))
    assert len(found) == 5, found  # the role, the literal's two ``, the two private names
    assert any(":func:" in f for f in found) and any("``" in f for f in found)
    assert any("optcompat._common" in f for f in found) and any("'_Optimizer'" in f for f in found)
    assert check_site.main([str(tmp_path)]) == 1
    (tmp_path / "api" / "index.html").write_text("<p>AdamW(learning_rate=0.001), \\(x_t\\)</p>")
    assert check_site.findings(str(tmp_path)) == []


# -- the API reference's examples ------------------------------------------------------------------

NOT_RUN = "# not run:"


def examples():
    """(id, code) of every ```python block in an Example section of a docstring in the package
    and in the stubs that ci/stubs.py writes (AdamW's, SGDW's and the schedules' docstrings are
    there), as the API reference renders them; a block that starts with '# not run: <why>' is
    collected and skipped, with its reason."""
    found = []
    sources = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    sources[os.path.join(folder, name)] = f.read()
    sys.path.insert(0, os.path.join(ROOT, "ci"))
    import stubs

    sources.update((os.path.join(ROOT, rel), text) for rel, text in stubs.texts().items())
    for path, text in sorted(sources.items()):
        tree = ast.parse(text)
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
        for node in nodes:
            doc = ast.get_docstring(node) or ""
            section = re.search(r"^Examples?:\n(.*?)(?=^\S|\Z)", doc, flags=re.S | re.M)
            if section is None:
                continue
            for i, code in enumerate(blocks(re.sub(r"^    ", "", section.group(1), flags=re.M), "python")):
                where = os.path.relpath(path, ROOT) + ":" + getattr(node, "name", "module")
                found.append(("%s#%d" % (where, i), code))
    return found


EXAMPLES = examples()


def test_the_reference_has_examples():
    """Every public optimizer, schedule and module documented with an example (mkdocs.yml renders
    these docstrings): a missing one would silently leave the reference without it."""
    names = {key.split("#")[0] for key, _ in EXAMPLES}
    for needed in ("optcompat/__init__.pyi:AdamW", "optcompat/__init__.pyi:SGDW", "optcompat/__init__.py:module",
                   "optcompat/schedules.pyi:CosineDecay", "optcompat/schedules.pyi:WarmUp",
                   "optcompat/state/__init__.py:module", "optcompat/tfa/__init__.py:module",
                   "optcompat/keras_adamw/__init__.py:module",
                   "optcompat/__init__.py:decoupled", "optcompat/_rule.py:normalized_weight_decay"):
        assert needed in names, (needed, sorted(names))


def example_family(key):
    """The family an example is written for: a family module's (`optcompat/keras2.py:module`)
    its own, every other one the default family's (`optcompat.AdamW`)."""
    found = re.match(r"optcompat/(keras2|keras3|legacy)\.py:", key)
    return found.group(1) if found else ENV.default


@pytest.mark.applies(lambda facts, params: facts.family == example_family(params["key"]))
@pytest.mark.parametrize("key", [key for key, _ in EXAMPLES])
def test_reference_example_runs(host, key, tmp_path, monkeypatch):
    """The example as written, in its family (:func:`example_family`), given what its text
    assumes: `keras` (that family's Keras), `np`, an uncompiled `model` (4 inputs, one Dense
    unit) and its data `x`, `y`; in a fresh folder (an example may write a file)."""
    code = dict(EXAMPLES)[key]
    if code.startswith(NOT_RUN):
        pytest.skip(code.splitlines()[0][len(NOT_RUN):].strip())
    monkeypatch.chdir(tmp_path)
    keras = host.keras
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    exec(compile(code, key, "exec"), {"keras": keras, "np": np, "model": model, "x": x, "y": y})
