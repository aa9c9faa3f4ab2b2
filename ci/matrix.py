#!/usr/bin/env python3
"""Run the tox matrix (or a named part of it) in parallel; write docs/matrix.md and docs/matrix.png.

    python ci/matrix.py                           the default env_list (the whole matrix)
    python ci/matrix.py --label ci                the CI subset
    python ci/matrix.py --label matrix            one env per TensorFlow minor + the Keras 3 envs
    python ci/matrix.py --envs keras3-jax,tf28 -j 2
    python ci/matrix.py --label matrix --resume   go on with a cut-off run: keep the envs already done
    python ci/matrix.py --report-only             rewrite matrix.md / matrix.png from docs/results
    python ci/matrix.py --check                   only the checks of docs/results: identity, pre-releases
    python ci/matrix.py --check --latest-patch    ... and TF / Keras / tf-keras on the latest patch (registry)
    python ci/matrix.py --check --no-newest       ... without asking the registry for the newest releases
    python ci/matrix.py --chain-only              only the state chains (below)

The envs run through ``ci/tox -p J`` (J = ``-j``, default: the number of cores); a progress
line is printed as each env finishes.  In every env, after the tests, ``ci/record.py`` writes
``docs/results/<env>.json`` (trajectories, a 200-step fit; see that file); this script adds the
env's test counts and wall time to it, then writes from those records, and nothing else:

* ``docs/matrix.md``: env, Python, host versions, default family, families tested,
  passed/failed/skipped/deselected, the pre-releases resolved, wall time, and the cross-release
  identity check: the fixed-gradient trajectories of every env x family agree within 2e-5
  (max abs, every step), and the fit's final loss within 1e-4 (relative);
* ``docs/identity.png`` (the home page's picture): the same fit's loss, a panel per family, one
  curve per release on top of each other, and how far apart they are.
* ``docs/matrix.png``: the fit's loss curves overlaid for every env x family, and the
  fixed-gradient error against the float64 reference.

docs/ always shows one source: a run removes docs/results/*.json first (``--out DIR`` writes
elsewhere), unless ``--resume`` (below).  Every record, and every state chain's file, holds
``source``: the sha256 of the code it tested (``source_digest()``: the files of ``SOURCE_PATHS``
-- optcompat/, tests/, ci/record.py, the stubs' generator and template, tox.ini and the build's
files -- as they are in the
working tree; why those files: see ``SOURCE_PATHS``), ``commit`` (``git rev-parse HEAD``) and
``dirty`` (the tree differed from that commit in those files).  The report states the digest and
commit; when the records (chains included) are not all of one digest, it names the envs of each,
and the run, ``--check`` and ``--report-only`` fail.
``--resume`` goes on with a run that was cut off (the full matrix takes longer than a sitting):
the selection's envs whose record in results/ has the current tree's digest and passed (run
status OK) are kept, never deleted or rerun; the others run (their old records removed first),
and the records of envs outside the selection stay as they are (another digest among them fails
the report).  It prints which envs are kept and which run.  A state chain whose envs are all in
the selection runs again unless its file has the current digest and passed.  The report's header
says how many sittings the records come from, when each started, and the wall time summed over
them.  An env that resolved a pre-release (rc, dev, a, b) of any installed distribution fails,
and the report and the progress line name the package and version (the record's ``distributions``,
written by ``ci/record.py``; a ``*-nightly`` distribution a host pins is shown, not failed).
"Newest" envs test the newest releases: tox.ini's ``[optcompat:newest]`` declares, per env, the
distributions that must be the newest (``keras3-torch = keras, torch``), and an env fails when one of
them (the record's ``distributions``) is older than the newest final release the package registry
serves for the env's Python (``pip index versions --only-binary=:all: --python-version X.Y``), or is
not installed; the reason names package, version and newest (``torch 2.13.0+cpu (newest 2.15.0)``).
Where the registry cannot be asked, the env fails and the reason says so, never a silent pass; a run,
``--check`` and ``--report-only`` check it, ``--no-newest`` leaves it out (the report says so).
The test command (``ci/test.py``, CI) shares the runner but not this check: a release upstream
does not turn CI red.
``--latest-patch`` also fails an env whose TensorFlow / Keras / tf-keras is not the newest patch of
its minor that the package registry serves (``pip index versions``: it needs the registry).
When the run has every env of tox.ini's ``[optcompat:state-chain]``, one training run is then handed
through them in order (``tests/test_state_chain.py`` in each: 25 steps, the optimizer state and
weights passed on in ``optcompat.state``'s file, against 25 straight steps per stage in the first env); its
result goes to ``results/state_chain.json`` and a section of matrix.md, and a failure fails the run.
Likewise ``[optcompat:state-chain-raw]``: a custom training loop's run of variables created without
names (``results/state_chain_raw.json``); ``[optcompat:state-chain-torch]``: a ``torch.optim`` run
through Keras 3 on tensorflow and back (``results/state_chain_torch.json``).
Exit status: 0 when every env passed, the identity check passed, the records are of one source
and no env failed the version checks (pre-releases, newest, latest patches), else 1.
matplotlib is installed into the tox bootstrap venv (.tox-bootstrap) on first use.
Python 3.8+, standard library only (the plot runs in the bootstrap venv).
"""
import argparse
import configparser
import glob
import hashlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOX = os.path.join(ROOT, "ci", "tox")
BOOT_PYTHON = os.path.join(ROOT, ".tox-bootstrap", "bin", "python")
TOXWORKDIR = os.path.join(ROOT, ".tox")

TRAJ_TOL = 2e-5  # max abs difference between any two envs' fixed-gradient trajectories
LOSS_RTOL = 1e-4  # max relative difference between any two envs' final fit losses
VERSION_COLUMNS = [("tensorflow", "TensorFlow"), ("keras", "Keras"), ("tf_keras", "tf-keras"),
                   ("jax", "JAX"), ("torch", "torch")]


def utc(ts):
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def natural(name):
    """Sort key: tf28 before tf215."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------- env selection
def tox_config():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(ROOT, "tox.ini"))

    def split(s):
        return [e for e in re.split(r"[,\s]+", s) if e]

    labels = {}
    for line in cfg["tox"].get("labels", "").splitlines():
        if "=" in line:
            name, _, envs = line.partition("=")
            labels[name.strip()] = split(envs)
    return split(cfg["tox"]["env_list"]), labels


NEWEST_SECTION = "optcompat:newest"


def newest_declared():
    """``{env: [distribution]}`` from tox.ini's ``[optcompat:newest]``: the distributions each
    "newest" env must have at the registry's newest final release (PEP 503 names)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(ROOT, "tox.ini"))
    if not cfg.has_section(NEWEST_SECTION):
        return {}
    return {env: [canonical(d) for d in re.split(r"[,\s]+", value) if d]
            for env, value in cfg.items(NEWEST_SECTION)}


def select_envs(envs_arg, label):
    env_list, labels = tox_config()
    if envs_arg and label:
        raise SystemExit("matrix: give --envs or --label, not both")
    if label:
        if label not in labels:
            raise SystemExit("matrix: no label %r in tox.ini (labels: %s)" % (label, ", ".join(sorted(labels))))
        return labels[label]
    if envs_arg:
        envs = [e.strip() for e in envs_arg.split(",") if e.strip()]
        bad = [e for e in envs if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", e)]
        if bad:
            raise SystemExit("matrix: bad env names: %s" % ", ".join(bad))
        return envs
    return env_list


# --------------------------------------------------------------------------- the source a record tested
# What an env's record depends on: the package under test (optcompat/, built into the wheel tox
# installs), the suite every env runs (tests/, which ci/record.py imports too: the harness, the
# reference, problem()), the recorder (ci/record.py), the envs' pins, settings and commands
# (tox.ini), and the wheel's build (setup.cfg, setup.py, pyproject.toml, and the PEP 561 stubs
# that setup.py writes into it: ci/stubs.py from ci/init_stub.pyi).  ci/matrix.py itself is left out
# on purpose: it runs the envs and checks and renders their records, but changes nothing an env
# computes, so a change to the report does not make the records stale.
SOURCE_PATHS = ("optcompat", "tests", "ci/record.py", "ci/stubs.py", "ci/init_stub.pyi", "tox.ini", "setup.cfg",
                "setup.py", "pyproject.toml")


def _git(args, root):
    return subprocess.run(["git"] + args, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True).stdout.decode("utf-8", "surrogateescape")


def source_files(root=ROOT):
    """The files of SOURCE_PATHS git knows of, sorted: the tracked ones (``git ls-files``) and the
    untracked ones git does not ignore (pytest collects an untracked test module, and a new file
    under optcompat/ goes into the wheel, so they count as what was tested).  Outside a git
    checkout (an unpacked sdist): every file there but ``__pycache__`` and ``*.pyc``."""
    try:
        out = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--"] + list(SOURCE_PATHS),
                   root)
        return sorted({p for p in out.split("\0") if p})
    except (OSError, subprocess.CalledProcessError):
        found = set()
        for top in SOURCE_PATHS:
            full = os.path.join(root, top)
            if os.path.isfile(full):
                found.add(top)
            for folder, dirs, files in os.walk(full):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                found.update(os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/")
                             for f in files if not f.endswith(".pyc"))
        return sorted(found)


def source_digest(root=ROOT):
    """sha256 over SOURCE_PATHS' files in sorted path order, read from the working tree (what the
    envs install and run, committed or not): each file's path, its length and its bytes (a file
    tracked but deleted counts as deleted).  The same tree gives the same digest; a change to any
    byte, a new, removed or renamed file gives another."""
    h = hashlib.sha256()
    for path in source_files(root):
        try:
            with open(os.path.join(root, path), "rb") as f:
                data = f.read()
            h.update(b"F %d %s\0" % (len(data), path.encode("utf-8", "surrogateescape")))
            h.update(data)
        except FileNotFoundError:
            h.update(b"D %s\0" % path.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def source_info(root=ROOT):
    """``{source, commit, dirty}``: the digest of SOURCE_PATHS (source_digest), ``git rev-parse
    HEAD``, and whether the working tree differs from that commit in SOURCE_PATHS (modified,
    staged, deleted or untracked files: then ``commit`` alone does not give the tested code)."""
    try:
        commit = _git(["rev-parse", "HEAD"], root).strip()
        dirty = bool(_git(["status", "--porcelain", "--untracked-files=all", "--"] + list(SOURCE_PATHS),
                          root).strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {"source": source_digest(root), "commit": commit, "dirty": dirty}


def resume_plan(envs, results, source):
    """``(keep, run)`` for ``--resume``: the envs of ``envs`` whose record in ``results`` was made
    from ``source`` (the digest) and passed (run status OK) are kept; every other env runs."""
    keep, run = [], []
    for env in envs:
        rec = load_record(os.path.join(results, env + ".json"))
        ok = (rec is not None and rec.get("env") == env and rec.get("source") == source
              and (rec.get("run") or {}).get("status") == "OK")
        (keep if ok else run).append(env)
    return keep, run


def chain_kept(results, name, source):
    """True when ``results``'s file of chain ``name`` was made from ``source`` and passed."""
    chain = load_record(os.path.join(results, chain_file(name)))
    return bool(chain) and chain.get("source") == source and chain.get("ok") is True


def _short(digest):
    return (digest or "none")[:12]


def source_check(records, results=None):
    """Whether every record (and every state chain's file in ``results``) was made from one
    source: ``{ok, digests: {digest or None: [names]}, commits, dirty}``.  Records written before
    ci/matrix.py recorded the source have None; all None is reported, not failed (nothing to
    compare), None beside a digest fails."""
    digests, commits, dirty = {}, {}, []
    items = [(r["env"], r) for r in records]
    for name in CHAINS if results else ():
        chain = load_record(os.path.join(results, chain_file(name)))
        if chain is not None:
            items.append((name, chain))
    for name, rec in items:
        digests.setdefault(rec.get("source"), []).append(name)
        if rec.get("commit"):
            commits.setdefault(rec["commit"], []).append(name)
        if rec.get("dirty"):
            dirty.append(name)
    return {"ok": len(digests) <= 1, "digests": digests, "commits": commits, "dirty": dirty}


def source_failure(check):
    """``"records of 2 sources: abc... (tf22, tf23); def... (tf24)"``, or None (one source)."""
    if check["ok"]:
        return None
    return "records of %d sources: %s" % (len(check["digests"]), "; ".join(
        "%s (%s)" % (d or "no digest recorded", ", ".join(sorted(names, key=natural)))
        for d, names in sorted(check["digests"].items(), key=lambda kv: (kv[0] is None, kv[0] or ""))))


def print_source_check(check, current=None):
    if check["ok"]:
        digest = next(iter(check["digests"]), None)
        print("source: PASS %s" % ("all records of source %s (commit %s%s)" % (
            digest, ", ".join(sorted(check["commits"])) or "?", "; dirty tree" if check["dirty"] else "")
            if digest else "no source digest recorded"), flush=True)
    else:
        print("source: FAIL %s" % source_failure(check), flush=True)
    if current is not None and any(check["digests"]) and current not in check["digests"]:
        print("source: note: the working tree is source %s, not the records'" % current, flush=True)


# --------------------------------------------------------------------------- running
FINISH = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*): (OK|FAIL|SKIP)\b(.*)$")


def parse_finish(line, envs):
    """``(env, status, seconds)`` from tox's line for a finished env, else None.

    tox prints ``env: OK ✔ in 1 minute 8.13 seconds`` when an env finishes and
    ``  env: FAIL code 1 (68.13=setup[..]+cmd[..] seconds)`` in its final report."""
    m = FINISH.match(line)
    if not m or m.group(1) not in envs:
        return None
    rest = re.sub(r"code -?\d+", "", m.group(3))
    total = re.search(r"\((\d+(?:\.\d+)?)=", rest)  # final report: (68.13=setup[..]+cmd[..] seconds)
    if total:
        return m.group(1), m.group(2), float(total.group(1))
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(hour|minute|second)s?\b", rest)  # 1 minute 8.13 seconds
    scale = {"hour": 3600.0, "minute": 60.0, "second": 1.0}
    seconds = sum(float(n) * scale[u] for n, u in parts) if parts else None
    return m.group(1), m.group(2), seconds


def junit_counts(path):
    """passed / failed / errors / skipped (and the failing test ids) from a pytest junit XML."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failing = []
    for s in suites:
        for k in n:
            n[k] += int(s.get(k, 0) or 0)
        for case in s.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failing.append("%s::%s" % (case.get("classname", ""), case.get("name", "")))
    return {"passed": n["tests"] - n["failures"] - n["errors"] - n["skipped"],
            "failed": n["failures"], "errors": n["errors"], "skipped": n["skipped"],
            "failing": failing}


# pytest's closing line: "=== 5 passed, 3 deselected in 1.20s ===" ("5 passed in 0.3s" under -q;
# "in 75.00s (0:01:15)" past a minute)
SUMMARY = re.compile(r"^=*\s*((?:\d+ [a-z]+|no tests ran)(?:, \d+ [a-z]+)*) in [0-9.]+s\b")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def pytest_deselected(text):
    """``N`` of pytest's last summary line (``=== 5 passed, 3 deselected in 1.2s ===``): 0 when
    the line has no ``deselected``, None when there is no summary line."""
    n = None
    for line in text.splitlines():
        m = SUMMARY.match(ANSI.sub("", line).strip())
        if m:
            d = re.search(r"(\d+) deselected", m.group(1))
            n = int(d.group(1)) if d else 0
    return n


def deselected_count(log_dir, started):
    """Deselected tests of the env's pytest run (tox's command logs in ``.tox/ENV/log``), or None."""
    logs = [p for p in glob.glob(os.path.join(log_dir, "*commands*.log")) if os.path.getmtime(p) >= started]
    for path in sorted(logs, key=os.path.getmtime, reverse=True):
        try:
            with open(path, errors="replace") as f:
                n = pytest_deselected(f.read())
        except OSError:
            continue
        if n is not None:
            return n
    return None


def load_record(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save_record(path, rec):
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


# --------------------------------------------------------------------------- resolved versions
# A pre-release fails the env.  Checked in every distribution the env has (the record's
# ``distributions``; an older record: its ``describe.versions``).  A ``*-nightly`` distribution
# is a pre-release by name, pinned by the host release itself (TF 2.5 needs keras-nightly): noted,
# never a failure.
HOST_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "jax", "jaxlib", "torch",
                 "tensorflow-addons", "keras-adamw", "numpy")
PRE_WORDS = {"a", "alpha", "b", "beta", "c", "rc", "pre", "preview", "dev"}
LATEST_PATCH_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "tf-keras")


def canonical(name):
    """PEP 503 name: ``tf_keras`` -> ``tf-keras``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_prerelease(version):
    """True for a PEP 440 pre-release or dev release (2.13.0rc1, 2.5.0.dev2021, 1.0b2, 2.13.0-rc1);
    False for a final, post or local release (2.15.0.post1, 2.13.0+cpu) and for no version."""
    v = str(version or "").split("+", 1)[0].strip().lower()
    m = re.match(r"v?(?:\d+!)?\d+(?:\.\d+)*", v)
    if not m:
        return False
    return any(w in PRE_WORDS for w in re.findall(r"[a-z]+", v[m.end():]))


def resolved(rec):
    """``{canonical name: version}`` of what the env installed: its distributions, else the host
    versions ``optcompat.describe()`` read."""
    found = {canonical(k): v for k, v in ((rec.get("describe") or {}).get("versions") or {}).items() if v}
    found.update({canonical(k): v for k, v in (rec.get("distributions") or {}).items() if v})
    return found


def prereleases(rec):
    """Every pre-release the env resolved: ``[{package, version, fails}]``, host packages first."""
    pre = [{"package": name, "version": v, "fails": not name.endswith("-nightly")}
           for name, v in resolved(rec).items() if is_prerelease(v)]
    return sorted(pre, key=lambda p: (p["package"] not in HOST_PACKAGES and not p["package"].startswith("tensorflow"),
                                      p["package"]))


def prerelease_failure(rec):
    """The reason the env fails for a pre-release (``tensorflow-cpu 2.13.0rc1``), or None."""
    bad = ["%s %s" % (p["package"], p["version"]) for p in prereleases(rec) if p["fails"]]
    return "pre-release resolved: " + ", ".join(bad) if bad else None


def _release(version):
    m = re.match(r"v?(\d+(?:\.\d+)*)", str(version).split("+", 1)[0].strip())
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def latest_patch(version, available):
    """The newest final release in ``available`` of ``version``'s major.minor (None if none)."""
    rel = _release(version)
    if not rel or len(rel) < 2:
        return None
    same = [v for v in available if not is_prerelease(v) and (_release(v) or ())[:2] == rel[:2]
            and "post" not in v]
    return max(same, key=_release) if same else None


_INDEX = {}


def registry_versions(name, python):
    """Versions of ``name`` the package registry serves wheels of for Python ``python`` (X.Y):
    ``pip index versions`` from the bootstrap venv (needs the registry: the newest check and
    ``--latest-patch``); None where the registry answered none (or pip could not be run)."""
    key = (name, python)
    if key not in _INDEX:
        try:
            out = subprocess.run([BOOT_PYTHON, "-m", "pip", "index", "versions", name, "--pre", "--only-binary=:all:",
                                  "--python-version", python, "--disable-pip-version-check"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
        except OSError:
            out = ""
        m = re.search(r"^Available versions: (.*)$", out, re.M)
        _INDEX[key] = [v.strip() for v in m.group(1).split(",")] if m else None
    return _INDEX[key]


def not_latest_patch(rec, versions_of=registry_versions):
    """``["tensorflow-cpu 2.13.0 (latest 2.13.1)"]`` for each of the env's TensorFlow / Keras /
    tf-keras that is not the newest patch of its minor on the registry."""
    python = ".".join((rec.get("python") or "3").split(".")[:2])
    found = resolved(rec)
    if "tensorflow-cpu" in found and found.get("tensorflow") == found["tensorflow-cpu"]:
        found.pop("tensorflow")  # describe's "tensorflow" is the tensorflow-cpu distribution
    behind = []
    for name in LATEST_PATCH_PACKAGES:
        if name not in found:
            continue
        available = versions_of(name, python)
        if not available:
            behind.append("%s %s (the registry answered no versions)" % (name, found[name]))
            continue
        top = latest_patch(found[name], available)
        if top is not None and _release(top) > _release(found[name]):
            behind.append("%s %s (latest %s)" % (name, found[name], top))
    return behind


def newest_release(available):
    """The newest final release in ``available`` (pre-releases and dev releases left out; a local
    ``+cpu`` or a ``.post`` counts as its release), or None."""
    finals = [v for v in available or () if not is_prerelease(v) and _release(v)]
    return max(finals, key=_release) if finals else None


def newest_checks(rec, packages, versions_of=registry_versions):
    """For each of ``packages`` (declared newest for the env): ``{package, version, newest, ok,
    why}`` -- the record's installed version against the registry's newest final release for the
    env's Python.  Not installed, or no answer from the registry: not ok, ``why`` says which."""
    python = ".".join((rec.get("python") or "3").split(".")[:2])
    dists = {canonical(k): v for k, v in (rec.get("distributions") or {}).items() if v}
    out = []
    for name in packages:
        name = canonical(name)
        row = {"package": name, "version": dists.get(name), "newest": None, "ok": False, "why": None}
        out.append(row)
        if row["version"] is None:
            row["why"] = "%s not installed (the record lists no such distribution)" % name
            continue
        try:
            available = versions_of(name, python)
        except Exception as e:  # noqa: BLE001 -- an injected or failing registry query: say so
            available, err = None, ": %s" % e
        else:
            err = ""
        row["newest"] = newest_release(available)
        if not available:
            row["why"] = "%s %s (newest unknown: the registry could not be asked for Python %s%s)" % (
                name, row["version"], python, err)
            continue
        if row["newest"] is None:
            row["why"] = "%s %s (newest unknown: the registry serves no final release for Python %s)" % (
                name, row["version"], python)
            continue
        row["ok"] = _release(row["version"]) >= _release(row["newest"])
        if not row["ok"]:
            row["why"] = "%s %s (newest %s)" % (name, row["version"], row["newest"])
    return out


def not_newest(rec, packages, versions_of=registry_versions):
    """``["torch 2.13.0+cpu (newest 2.15.0)"]``: each of ``packages`` the env does not have at the
    registry's newest final release (or that could not be checked, saying why); [] when all are."""
    return [c["why"] for c in newest_checks(rec, packages, versions_of) if not c["ok"]]


def newest_failure(rec, newest, versions_of=None):
    """The reason the env fails the newest check (tox.ini ``[optcompat:newest]``: ``newest`` is
    ``{env: [distribution]}``), or None (passed, or the env declares no newest distribution)."""
    packages = (newest or {}).get(rec.get("env"))
    if not packages:
        return None
    behind = not_newest(rec, packages, versions_of or registry_versions)
    return "not the newest release: " + ", ".join(behind) if behind else None


def collect(env, status, seconds, results, started, command, newest=None, source=None):
    """Merge what tox said and the env's junit counts into results/<env>.json; return it.
    ``newest``: tox.ini's ``[optcompat:newest]`` (``newest_declared()``), or None: not checked.
    ``source``: ``source_info()`` at the run's start; the record gets its ``source`` digest,
    ``commit`` and ``dirty`` -- or, when the tree's digest is another one now (SOURCE_PATHS changed
    while the env ran), ``source`` None and a ``source_note``: such a record is never kept by
    ``--resume``, and fails the one-source check."""
    path = os.path.join(results, env + ".json")
    rec = load_record(path)
    if rec is None or rec.get("env") != env:
        tests_only = re.search(r"(^|-)(dist|peers)(-|$)", env)  # their tox commands run no ci/record.py
        rec = {"env": env, "families": {}, "errors": {}, "record": "not recorded" if tests_only else "missing",
               "note": "a dist / peers env: tests only, no record" if tests_only else
               "no record: the env failed before ci/record.py ran (see the log)"}
    junit = os.path.join(TOXWORKDIR, env, "tmp", "junit.xml")
    counts = None
    if os.path.exists(junit) and os.path.getmtime(junit) >= started:
        try:
            counts = junit_counts(junit)
        except (ET.ParseError, OSError, ValueError):
            counts = None
    if counts is not None:
        counts["deselected"] = deselected_count(os.path.join(TOXWORKDIR, env, "log"), started)
    reason = "; ".join(r for r in [prerelease_failure(rec), newest_failure(rec, newest)] if r) or None
    if reason and status == "OK":
        status = "FAIL"
    rec["run"] = {"status": status, "wall_s": seconds, "tests": counts, "command": command,
                  "started": utc(started), "sitting": round(started, 3), "finished": round(time.time(), 3),
                  "reason": reason}
    if source is not None:
        rec.update(source=source["source"], commit=source["commit"], dirty=source["dirty"])
        now = source_digest()
        if now != source["source"]:
            rec["source"] = None
            rec["source_note"] = "the source changed while the env ran (%s at the start, %s at its end)" % (
                source["source"], now)
    save_record(path, rec)
    return rec


def fmt_counts(counts):
    if not counts:
        return "no test counts"
    s = "%d passed, %d failed, %d skipped" % (counts["passed"], counts["failed"] + counts["errors"],
                                              counts["skipped"])
    if counts.get("deselected"):
        s += ", %d deselected" % counts["deselected"]
    return s


def clear_records(results, envs, resume=False):
    """Before a run: without ``resume`` remove every record of ``results`` (the chains' files too:
    results/ holds exactly one run); with it only ``envs``' records (they run again)."""
    paths = [os.path.join(results, env + ".json") for env in envs] if resume else \
        glob.glob(os.path.join(results, "*.json"))
    for path in paths:
        if os.path.exists(path):
            os.remove(path)


def run_matrix(envs, jobs, results, command, log_path, newest=None, resume=False, source=None):
    """Run ``envs`` through ci/tox -p jobs; print progress; return True when every env passed.
    ``newest``: ``{env: [distribution]}`` to check against the registry (None: no newest check).
    ``source``: ``source_info()`` (default: read now), recorded in every record.  Without
    ``resume`` results/ is emptied first (it holds exactly one run); with it only the records of
    ``envs`` are replaced (``main`` has left out the envs it keeps), the others stay."""
    if not os.path.isdir(results):
        os.makedirs(results)
    source = source or source_info()
    clear_records(results, envs, resume)
    for env in envs:
        junit = os.path.join(TOXWORKDIR, env, "tmp", "junit.xml")
        if os.path.exists(junit):
            os.remove(junit)
    # bootstrap tox once, before parallel work
    subprocess.check_call([TOX, "--version"], stdout=subprocess.DEVNULL)
    started = time.time()
    environ = dict(os.environ, OPTCOMPAT_RECORD_DIR=results, PYTHONUNBUFFERED="1")
    cmd = [TOX, "-p", str(jobs), "--parallel-no-spinner", "--colored", "no", "-e", ",".join(envs)]
    print("matrix: %d envs, %d at a time: %s" % (len(envs), jobs, " ".join(cmd[1:])), flush=True)
    print("matrix: tox output -> %s; records -> %s" % (os.path.relpath(log_path, ROOT),
                                                        os.path.relpath(results, ROOT)), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = queue.Queue()

    def pump():
        for raw in iter(proc.stdout.readline, b""):
            lines.put(raw.decode("utf-8", "replace"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    done = {}
    last_beat = time.time()
    with open(log_path, "w") as log:
        while True:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                line = ""
            if line is None:
                break
            log.write(line)
            log.flush()
            fin = parse_finish(line, envs) if line else None
            if fin and fin[0] not in done:
                env, status, seconds = fin
                rec = collect(env, status, seconds, results, started, command, newest, source)
                done[env] = rec
                fams = ", ".join(sorted(rec.get("families", {}))) or "no family"
                if rec.get("not_recorded"):
                    fams += "; not recorded: " + ", ".join(sorted(rec["not_recorded"]))
                print("[%d/%d] %-22s %-4s %7.1fs  %s  (%s)" % (
                    len(done), len(envs), env, rec["run"]["status"], seconds or 0.0, fmt_counts(rec["run"]["tests"]),
                    fams), flush=True)
                if rec["run"].get("reason"):
                    print("        %s: FAIL, %s" % (env, rec["run"]["reason"]), flush=True)
                failing = (rec["run"]["tests"] or {}).get("failing") or []
                for test in failing[:20]:
                    print("        failed: %s" % test, flush=True)
                if len(failing) > 20:
                    print("        ... and %d more (see .tox/%s/log/)" % (len(failing) - 20, env), flush=True)
                last_beat = time.time()
            elif time.time() - last_beat >= 60:
                print("matrix: %d of %d envs done after %.0fs" % (len(done), len(envs), time.time() - started),
                      flush=True)
                last_beat = time.time()
    rc = proc.wait()
    for env in envs:  # tox never reported it (e.g. an unknown env, or tox itself failed)
        if env not in done:
            done[env] = collect(env, "FAIL", None, results, started, command, newest, source)
            print("[-/%d] %-22s FAIL (tox reported no result; see the log)" % (len(envs), env), flush=True)
    total_s = time.time() - started
    for env in envs:  # the whole run's wall time and parallelism, for --report-only
        path = os.path.join(results, env + ".json")
        rec = load_record(path)
        if rec is not None:
            rec["run"].update(total_s=round(total_s, 1), jobs=jobs)
            save_record(path, rec)
    ok = rc == 0 and all(r["run"]["status"] == "OK" for r in done.values())
    print("matrix: tox exited %d after %.0fs" % (rc, total_s), flush=True)
    return ok, total_s


# --------------------------------------------------------------------------- the state chain
CHAIN_FILE = "state_chain.json"  # in results/ (no "env" key: not an env record)
# tox.ini's chains, [optcompat:<name>]: the model.fit run (state-chain) and the custom training
# loop's run of raw, unnamed variables (state-chain-raw); tests/test_state_chain.py tells them
# apart by OPTCOMPAT_CHAIN_NAME
CHAINS = ("state-chain", "state-chain-raw", "state-chain-torch")
CHAIN_TEXT = {"state-chain": "25 steps of `model.fit` in each env",
              "state-chain-raw": "25 steps of a custom training loop in each env (variables created without "
                                 "names, the backend's own gradients, `apply_gradients`)",
              "state-chain-torch": "15 steps of `torch.optim` (AdamW, SGD), of optcompat on Keras 3's tensorflow "
                                   "backend, of `torch.optim` again"}
CHAIN_TITLE = {"state-chain": ("## A training run across releases", "State chain"),
               "state-chain-raw": ("## A custom training loop's run across releases", "Raw-variable chain"),
               "state-chain-torch": ("## A torch.optim run through Keras 3 on tensorflow", "Torch chain")}
CHAIN_STEPS = {"state-chain": 25, "state-chain-raw": 25, "state-chain-torch": 15}  # per stage


def straight_text(name, stages):
    """What the chain's end is compared with: the same number of steps straight in the first env
    (``tests/test_state_chain.py``: 25 a stage; the torch chain, 15 a stage of torch's own)."""
    n = CHAIN_STEPS.get(name, 25) * len(stages)
    return "%d straight torch steps" % n if name == "state-chain-torch" else "%d straight steps" % n


def chain_file(name):
    return CHAIN_FILE if name == "state-chain" else name.replace("-", "_") + ".json"


def chain_stages(name="state-chain"):
    """The envs a training run is handed through, in order (tox.ini [optcompat:<name>])."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(ROOT, "tox.ini"))
    section = cfg["optcompat:" + name] if cfg.has_section("optcompat:" + name) else {}
    return [e for e in re.split(r"[,\s]+", section.get("stages", "")) if e]


def run_chains(envs, results, command, resume=False, source=None):
    """Every chain of CHAINS whose envs ``envs`` has (all when None): None where none ran (or was
    kept), else whether all passed.  With ``resume``, a chain whose results file was made from
    ``source`` (``source_info()``; default: read now) and passed is kept, not run again."""
    ok = None
    source = source or source_info()
    for name in CHAINS:
        stages = chain_stages(name)
        if stages and (envs is None or all(e in envs for e in stages)):
            if resume and chain_kept(results, name, source["source"]):
                print("%s: kept (--resume): results/%s is of source %s and passed" % (
                    name, chain_file(name), _short(source["source"])), flush=True)
                continue
            log = os.path.join(TOXWORKDIR, "chain.log" if name == "state-chain" else name + ".log")
            passed = run_chain(stages, results, log, command, name, source)
            ok = passed and ok is not False
    return ok


def run_chain(stages, results, log_path, command="python ci/matrix.py", name="state-chain", source=None):
    """Run tests/test_state_chain.py's chain ``name`` in each env of ``stages``, one after
    another, handing the state files through one folder; write results/<chain_file(name)> (with
    ``source_info()``'s source digest, commit and dirty flag, like an env's record); return True
    when every stage passed."""
    import shutil
    import tempfile

    source = source or source_info()
    folder = tempfile.mkdtemp(prefix="optcompat-chain-")
    done, ok, started = [], True, time.time()
    print("%s: %s (tests/test_state_chain.py; files in %s)" % (name, " -> ".join(stages), folder), flush=True)
    try:
        with open(log_path, "w") as log:
            for i, env in enumerate(stages):
                environ = dict(os.environ, OPTCOMPAT_CHAIN_DIR=folder, OPTCOMPAT_CHAIN_STAGE="%d/%d" % (i, len(stages)),
                               OPTCOMPAT_CHAIN_NAME=name, OPTCOMPAT_RECORD_DIR=os.path.join(folder, "records"),
                               PYTHONUNBUFFERED="1")
                t0 = time.time()
                rc = subprocess.call([TOX, "-e", env, "--", "tests/test_state_chain.py", "-p", "no:cacheprovider"],
                                     cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
                stage = {"env": env, "rc": rc, "wall_s": round(time.time() - t0, 1), "runs": {}}
                for path in sorted(glob.glob(os.path.join(folder, "*", "stage-%d.json" % i))):
                    with open(path) as f:
                        stage["runs"][os.path.basename(os.path.dirname(path))] = json.load(f)
                passed = rc == 0 and len(stage["runs"]) > 0
                ok = ok and passed
                done.append(stage)
                diffs = ", ".join("%s %.2g" % (run, r["max_abs_diff_vs_straight"]) for run, r in sorted(
                    stage["runs"].items()) if "max_abs_diff_vs_straight" in r)
                print("[%s %d/%d] %-16s %-4s %6.1fs  %d runs%s" % (
                    name, i + 1, len(stages), env, "OK" if passed else "FAIL", stage["wall_s"], len(stage["runs"]),
                    "; vs straight: " + diffs if diffs else ""), flush=True)
                if not passed:
                    break
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    chain = {"name": name, "stages": stages, "done": done, "ok": ok and len(done) == len(stages),
             "command": command, "started": utc(started), "wall_s": round(time.time() - started, 1),
             "source": source["source"], "commit": source["commit"], "dirty": source["dirty"]}
    now = source_digest()
    if now != source["source"]:  # SOURCE_PATHS changed while it ran: of no one source
        chain["source"] = None
        chain["source_note"] = "the source changed while the chain ran (%s at the start, %s at its end)" % (
            source["source"], now)
    save_record(os.path.join(results, chain_file(name)), chain)
    return chain["ok"]


def render_chain(results):
    """The report's lines for each chain's results/<chain_file> (none where it did not run)."""
    lines = []
    for name in CHAINS:
        path = os.path.join(results, chain_file(name))
        if os.path.exists(path):
            with open(path) as f:
                lines += render_one_chain(json.load(f), name)
    return lines


def render_one_chain(chain, chain_name):
    last = chain["done"][-1]["runs"] if chain["done"] else {}
    lines = [CHAIN_TITLE[chain_name][0], "",
             "`tests/test_state_chain.py`, run by `%s` (%s): %s, the optimizer "
             "state and the weights handed on in `optcompat.state`'s file, against %s in the first "
             "env (tolerance 1e-5); %.0f s." % (chain.get("command", "python ci/matrix.py"), chain["started"],
                                                CHAIN_TEXT[chain_name], straight_text(chain_name, chain["stages"]),
                                                chain["wall_s"]), "",
             "| run | %s | max abs diff vs straight | result |" % " | ".join("`%s`" % e for e in chain["stages"]),
             "|---|%s---:|---|" % ("---|" * len(chain["stages"]))]
    runs = sorted({r for stage in chain["done"] for r in stage["runs"]})
    for run in runs:
        cells = []
        for i, env in enumerate(chain["stages"]):
            r = chain["done"][i]["runs"].get(run) if i < len(chain["done"]) else None
            name = r["optimizer"] if r else ""
            cells.append("`%s`, step %d" % (name if " " in name else name.rsplit(".", 1)[-1], r["iterations"])
                         if r else "-")
        diff = last.get(run, {}).get("max_abs_diff_vs_straight")
        passed = chain["ok"] and (diff is None or diff < 1e-5)  # (the docs page's run has no straight run)
        lines.append("| %s | %s | %s | %s |" % (run, " | ".join(cells), "-" if diff is None else _g(diff),
                                                "PASS" if passed else "**FAIL**"))
    lines += ["", "**%s: %s**" % (CHAIN_TITLE[chain_name][1],
                                   "PASS" if chain["ok"] else "FAIL"), ""]
    return lines


# --------------------------------------------------------------------------- the identity check
def load_records(results):
    recs = []
    for path in glob.glob(os.path.join(results, "*.json")):
        rec = load_record(path)
        if rec is not None and "env" in rec:
            recs.append(rec)
    return sorted(recs, key=lambda r: natural(r["env"]))


def runs_of(records):
    """``[(label, family record)]`` for every env x family recorded, label ``env/family``."""
    out = []
    for rec in records:
        for fam, data in sorted(rec.get("families", {}).items()):
            out.append(("%s/%s" % (rec["env"], fam), data))
    return out


def _max_pairwise(items, diff):
    """(largest diff over all pairs, the pair) for ``items`` = [(label, value)]."""
    worst, pair = 0.0, None
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            d = diff(items[i][1], items[j][1])
            if pair is None or d > worst:
                worst, pair = d, (items[i][0], items[j][0])
    return worst, pair


def _traj_diff(a, b):
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b)):
        return float("inf")
    return max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x, y))


def _rel(a, b):
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale else 0.0


def identity(records):
    """The cross-release identity checks: a list of dicts (check, value, tol, status, detail)."""
    runs = runs_of(records)
    checks = []

    def add(name, value, tol, detail, n):
        status = "n/a" if value is None else "PASS" if value <= tol else "FAIL"
        checks.append({"check": name, "value": value, "tol": tol, "status": status, "detail": detail, "runs": n})

    cases = sorted({c for _, d in runs for c in d.get("fixed", {})})
    for case in cases:
        items = [(lab, d["fixed"][case]["trajectory"]) for lab, d in runs if case in d.get("fixed", {})]
        worst, pair = _max_pairwise(items, _traj_diff)
        add("%s fixed-gradient trajectory, max abs difference between envs" % case,
            worst if pair else None, TRAJ_TOL, " vs ".join(pair) if pair else "fewer than 2 runs", len(items))
        errs = [(lab, max(d["fixed"][case]["max_abs_error_vs_reference"])) for lab, d in runs
                if case in d.get("fixed", {})]
        top = max(errs, key=lambda e: e[1]) if errs else None
        add("%s fixed-gradient trajectory, max abs error vs float64 reference" % case,
            top[1] if top else None, TRAJ_TOL, top[0] if top else "no runs", len(errs))
    fits = [(lab, d["fit"]) for lab, d in runs if "fit" in d]
    configs = {json.dumps(f["config"], sort_keys=True) for _, f in fits}
    if len(configs) > 1:
        checks.append({"check": "fit configuration the same in every record", "value": None, "tol": None,
                       "status": "FAIL", "detail": "records from different ci/record.py settings: rerun",
                       "runs": len(fits)})
    short = ["%s (%s of %s)" % (lab, f.get("iterations"), f["steps"]) for lab, f in fits
             if f.get("iterations") is not None and f["iterations"] != f["steps"]]
    if short:
        checks.append({"check": "fit ran every step", "value": None, "tol": None, "status": "FAIL",
                       "detail": ", ".join(short), "runs": len(fits)})
    worst, pair = _max_pairwise([(lab, f["final_loss"]) for lab, f in fits], _rel)
    add("fit final loss (%d steps), max relative difference between envs" % (fits[0][1]["steps"] if fits else 200),
        worst if pair else None, LOSS_RTOL, " vs ".join(pair) if pair else "fewer than 2 runs", len(fits))
    errors = ["%s/%s" % (r["env"], fam) for r in records for fam in sorted(r.get("errors", {}))]
    if errors:
        checks.append({"check": "recorder ran without errors", "value": None, "tol": None, "status": "FAIL",
                       "detail": ", ".join(errors), "runs": len(errors)})
    return checks


def identity_ok(checks):
    return all(c["status"] != "FAIL" for c in checks)


# --------------------------------------------------------------------------- the report
def _v(rec, key):
    return (rec.get("describe") or {}).get("versions", {}).get(key) or "-"


def _g(x):
    return "-" if x is None else "%.3g" % x


def version_failures(records, latest=False, versions_of=None, newest=None):
    """``{env: [reason]}`` for every env that resolved a pre-release, or (``newest``: tox.ini's
    ``[optcompat:newest]``) does not have a declared-newest distribution at the registry's newest
    release, or, with ``latest``, a TensorFlow / Keras / tf-keras that is not the newest patch of
    its minor on the registry."""
    bad = {}
    for rec in records:
        reasons = [r for r in [prerelease_failure(rec), newest_failure(rec, newest, versions_of)] if r]
        if latest:
            behind = not_latest_patch(rec, versions_of or registry_versions)
            if behind:
                reasons.append("not the latest patch: " + ", ".join(behind))
        if reasons:
            bad[rec["env"]] = reasons
    return bad


def print_version_checks(records, bad, latest, newest=None):
    checked = sorted({r["env"] for r in records} & set(newest or {}), key=natural)
    what = ["pre-releases"] + (["newest releases (%s)" % ", ".join(checked)] if checked else
                               ["newest not checked (--no-newest)"] if newest is None else [])
    what += ["latest patches"] if latest else []
    for env in sorted(bad, key=natural):
        print("versions: FAIL %s: %s" % (env, "; ".join(bad[env])))
    print("versions: %s (%d envs: %s)" % ("PASS" if not bad else "FAIL", len(records), "; ".join(what)), flush=True)


def render_newest(records, newest, versions_of=None):
    """The report's section on tox.ini's ``[optcompat:newest]``: each declared distribution of each
    env in the run, its version, the registry's newest final release, and the result."""
    if newest is None:
        return ["## Newest releases", "", "Not checked (`--no-newest`).", ""]
    rows = [(rec["env"], c) for rec in records for c in newest_checks(rec, newest.get(rec["env"]) or [],
                                                                     versions_of or registry_versions)]
    if not rows:
        return []
    lines = ["## Newest releases", "",
             "The envs that tox.ini's `[optcompat:newest]` declares must have the newest final release "
             "of these distributions that the registry serves for their Python (`pip index versions`).", "",
             "| env | Python | distribution | installed | registry's newest | result |", "|---|---|---|---|---|---|"]
    python = {rec["env"]: ".".join((rec.get("python") or "-").split(".")[:2]) for rec in records}
    for env, c in rows:
        lines.append("| `%s` | %s | %s | %s | %s | %s |" % (env, python[env], c["package"], c["version"] or "-",
                                                          c["newest"] or "-",
                                                          "PASS" if c["ok"] else "**FAIL**: " + c["why"]))
    return lines + [""]


def sittings(records):
    """The sittings (runs of ``ci/matrix.py``) the records come from, in order: ``[{started,
    command, envs, wall_s, cut}]``.  ``wall_s``: the sitting's tox run (``total_s``), or, where it
    was cut off before writing that, from its start to its last env's end (``cut``: True), or
    None where neither is known."""
    found = {}
    for rec in records:
        run = rec.get("run") or {}
        if not run:
            continue
        key = run.get("sitting") or (run.get("started") or "?", run.get("command") or "?")
        s = found.setdefault(key, {"started": run.get("started") or "?", "command": run.get("command") or "?",
                                   "envs": [], "total_s": None, "finished": None, "t0": run.get("sitting")})
        s["envs"].append(rec["env"])
        if run.get("total_s") is not None:
            s["total_s"] = run["total_s"]
        if run.get("finished") is not None:
            s["finished"] = max(s["finished"] or 0.0, run["finished"])
    out = []
    for key, s in sorted(found.items(), key=lambda kv: (kv[1]["t0"] or 0.0, kv[1]["started"])):
        wall, cut = s["total_s"], False
        if wall is None and s["finished"] is not None and s["t0"] is not None:
            wall, cut = s["finished"] - s["t0"], True
        out.append({"started": s["started"], "command": s["command"], "envs": s["envs"], "wall_s": wall,
                    "cut": cut, "t0": s["t0"]})
    return out


def render_source(check):
    """The report's lines on the source the records were made from (``source_check``)."""
    paths = ", ".join(p + ("/" if "." not in p else "") for p in SOURCE_PATHS)
    if not check["ok"]:
        return ["**Source: FAIL**: the records are not all of one source (sha256 of %s); rerun the envs of the "
                "other digests (`--resume` reruns the envs whose digest is not the tree's):" % paths, ""] + [
            "* `%s`: %s" % (d or "no digest recorded", ", ".join("`%s`" % n for n in sorted(names, key=natural)))
            for d, names in sorted(check["digests"].items(), key=lambda kv: (kv[0] is None, kv[0] or ""))] + [""]
    digest = next(iter(check["digests"]), None)
    if digest is None:
        return ["Source: not recorded (records written before `ci/matrix.py` recorded the digest of the "
                "tested code).", ""]
    commits = ", ".join("`%s`" % c for c in sorted(check["commits"])) or "not recorded"
    return ["Source: every record is of the same code, sha256 `%s` of %s in the working tree; commit %s%s." % (
        digest, paths, commits, " (the tree differed from the commit in those files: %s)" % ", ".join(
            "`%s`" % n for n in sorted(check["dirty"], key=natural)) if check["dirty"] else
        ", the tree clean in those files"), ""]


def render_header_run(records, command, when, total_s, cores):
    """The header's "Generated by ..." part: one sitting as before; several (``--resume``) listed,
    the wall time summed over them."""
    runs = sittings(records)
    if len(runs) == 1 and runs[0]["t0"] is not None:  # the records say which sitting made them
        command, when, total_s = runs[0]["command"], runs[0]["started"], runs[0]["wall_s"]
        if runs[0]["cut"]:
            return "Generated by `%s` on %s" % (command, when), \
                "; %.0f s wall time (cut off: to its last env's end) on %s cores" % (total_s, cores or "?")
    if len(runs) <= 1:
        total = "" if total_s is None else "; %.0f s wall time in all on %s cores" % (total_s, cores or "?")
        return "Generated by `%s` on %s" % (command, when), total
    parts = []
    for s in runs:
        wall = "wall time not recorded" if s["wall_s"] is None else (
            "%.0f s%s" % (s["wall_s"], " (cut off: to its last env's end)" if s["cut"] else ""))
        parts.append("`%s` on %s: %d env%s, %s" % (s["command"], s["started"], len(s["envs"]),
                                                    "" if len(s["envs"]) == 1 else "s", wall))
    known = [s["wall_s"] for s in runs if s["wall_s"] is not None]
    missing = len(runs) - len(known)
    total = "; %.0f s wall time in all, summed over the %d sittings%s, on %s cores" % (
        sum(known), len(runs), "" if not missing else " (%d without a recorded wall time)" % missing, cores or "?")
    return "Generated in %d sittings, resumed with `--resume` (%s)" % (len(runs), "; ".join(parts)), total


def render_markdown(records, checks, command, when, png_name, total_s=None, cores=None, version_bad=None,
                    results=None, newest=None, versions_of=None):
    generated, total = render_header_run(records, command, when, total_s, cores)
    lines = [
        "# Test matrix",
        "",
        "<!-- generated by ci/matrix.py: do not edit by hand; rerun the command below -->",
        "%s (optcompat %s%s). Each env ran the test suite, then "
        "`ci/record.py`; the records are in `results/`. An env fails when a test fails or when it "
        "resolved a pre-release (rc, dev, a, b) of any distribution (column *pre-releases*: `none` "
        "means none was installed; a record without `distributions` shows its host packages only), "
        "and when an env that tox.ini declares newest is older than the registry's newest release "
        "(section *Newest releases*). "
        "*skipped* counts the cases pytest collected and skipped (with the reason in its log), "
        "*deselected* those a marker left out of the env's run."
        % (generated, _optcompat_version(records), total),
        "",
    ] + render_source(source_check(records, results)) + [
        "| env | Python | %s | default family | families tested | passed | failed | skipped | deselected "
        "| pre-releases | wall s | result |"
        % " | ".join(title for _, title in VERSION_COLUMNS),
        "|---|---|%s---|---|---:|---:|---:|---:|---|---:|---|" % ("---|" * len(VERSION_COLUMNS)),
    ]
    notes = []
    for rec in records:
        run = rec.get("run") or {}
        t = run.get("tests") or {}
        d = rec.get("describe") or {}
        fams = sorted(rec.get("families", {}))
        default = d.get("default_family") or "-"
        if default.startswith("none"):
            default = "none"
        status = run.get("status", "-")
        pre = prereleases(rec)
        for reason in (version_bad or {}).get(rec["env"], [prerelease_failure(rec)]):
            if reason:
                status = "FAIL"
                notes.append("`%s` failed: %s" % (rec["env"], reason))
        lines.append("| `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            rec["env"], rec.get("python", "-"), " | ".join(_v(rec, k) for k, _ in VERSION_COLUMNS),
            default, ", ".join(["`%s`" % f for f in fams] + ["(%s: no adapter)" % f for f in sorted(
                k for k, why in rec.get("not_recorded", {}).items() if "adapter" in why)]) or "none",
            t.get("passed", "-"), (t.get("failed", 0) + t.get("errors", 0)) if t else "-", t.get("skipped", "-"),
            "-" if t.get("deselected") is None else t["deselected"],
            ", ".join(("**%s %s**" if p["fails"] else "%s %s (the host's pin)") % (p["package"], p["version"])
                      for p in pre) or "none",
            "%.1f" % run["wall_s"] if run.get("wall_s") is not None else "-",
            "**FAIL**" if status == "FAIL" else status))
        if not fams:
            notes.append("`%s`: %s" % (rec["env"], rec.get("note", "no family recorded")))
        elif rec.get("not_recorded"):
            notes.append("`%s`: also installed, not recorded: %s" % (
                rec["env"], "; ".join("%s (%s)" % kv for kv in sorted(rec["not_recorded"].items()))))
        for failing in (t.get("failing") or [])[:10]:
            notes.append("`%s` failed: `%s`" % (rec["env"], failing))
        for fam, err in sorted(rec.get("errors", {}).items()):
            notes.append("`%s/%s` recorder error: `%s`" % (rec["env"], fam, err.strip().splitlines()[-1]))
    if notes:
        lines += [""] + ["* %s" % n for n in notes]
    lines += [""] + render_newest(records, newest, versions_of)
    lines += [
        "## Cross-release identity",
        "",
        "Every env x family ran the same 40-step fixed-gradient updates (`tests/test_trajectories.py` "
        "`problem()`: `AdamW` default convention, `SGDW` with momentum) and the same 200-step "
        "`model.fit` (same initial weights, data, batch size, `shuffle=False`, `AdamW`).",
        "",
        "| check | runs | value | tolerance | result | where |",
        "|---|---:|---:|---:|---|---|",
    ]
    for c in checks:
        lines.append("| %s | %d | %s | %s | %s | %s |" % (
            c["check"], c["runs"], _g(c["value"]), _g(c["tol"]),
            "**FAIL**" if c["status"] == "FAIL" else c["status"], c["detail"]))
    lines += ["", "**Identity: %s**" % ("PASS" if identity_ok(checks) else "FAIL"), ""]
    runs = runs_of(records)
    if runs:
        cases = sorted({c for _, d in runs for c in d.get("fixed", {})})
        lines += ["| env/family | host | devices seen | %s | fit initial loss | fit final loss | record s |"
                  % " | ".join("%s max err vs ref" % c for c in cases),
                  "|---|---|---|%s---:|---:|---:|" % ("---:|" * len(cases))]
        for lab, d in runs:
            fit = d.get("fit", {})
            lines.append("| `%s` | `%s` | %s | %s | %.7g | %.7g | %s |" % (
                lab, d.get("host", "-"), ", ".join(d.get("devices") or ["-"]),
                " | ".join(_g(max(d["fixed"][c]["max_abs_error_vs_reference"])) if c in d.get("fixed", {}) else "-"
                           for c in cases),
                fit.get("initial_loss", float("nan")), fit.get("final_loss", float("nan")), d.get("seconds", "-")))
        lines.append("")
    lines += ["![fit loss and trajectory error of every env](%s)" % png_name, ""]
    return "\n".join(lines + render_chain(results) if results else lines)


def _optcompat_version(records):
    vs = sorted({(r.get("describe") or {}).get("optcompat") for r in records} - {None})
    return ", ".join(vs) or "?"


def ensure_plotter():
    """The bootstrap venv's python, with matplotlib installed (once)."""
    if not os.path.exists(BOOT_PYTHON):
        subprocess.check_call([TOX, "--version"], stdout=subprocess.DEVNULL)
    probe = subprocess.call([BOOT_PYTHON, "-c", "import matplotlib"], stderr=subprocess.DEVNULL)
    if probe != 0:
        print("matrix: installing matplotlib into .tox-bootstrap", flush=True)
        subprocess.check_call([BOOT_PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               "matplotlib"])
    return BOOT_PYTHON


def write_report(out, command, when=None, total_s=None, latest=False, newest=None):
    """Write out/matrix.md and out/matrix.png from out/results; return (identity ok, plot ok,
    versions ok, one source).  ``newest``: tox.ini's ``[optcompat:newest]``, or None (not checked)."""
    results = os.path.join(out, "results")
    records = load_records(results)
    checks = identity(records)
    version_bad = version_failures(records, latest, newest=newest)
    when = when or utc(time.time())
    if total_s is None:  # --report-only: what the run recorded
        total_s = next((r["run"].get("total_s") for r in records if (r.get("run") or {}).get("total_s")), None)
    md = render_markdown(records, checks, command, when, "matrix.png", total_s, os.cpu_count(), version_bad, results,
                         newest)
    with open(os.path.join(out, "matrix.md"), "w") as f:
        f.write(md)
    png = os.path.join(out, "matrix.png")
    try:
        py = ensure_plotter()
        plot_ok = subprocess.call([py, os.path.abspath(__file__), "--plot", results, png]) == 0
    except (OSError, subprocess.CalledProcessError) as e:
        print("matrix: could not plot: %s" % e, file=sys.stderr)
        plot_ok = False
    print_checks(checks)
    print_version_checks(records, version_bad, latest, newest)
    source = source_check(records, results)
    print_source_check(source)
    print("matrix: wrote %s, %s and %s" % (os.path.relpath(os.path.join(out, "matrix.md"), ROOT),
                                          os.path.relpath(png, ROOT),
                                          os.path.relpath(os.path.join(out, "identity.png"), ROOT)))
    return identity_ok(checks), plot_ok, not version_bad, source["ok"]


def print_checks(checks):
    for c in checks:
        print("identity: %-4s %-75s %s (tol %s) %s" % (c["status"], c["check"], _g(c["value"]), _g(c["tol"]),
                                                        c["detail"]))
    print("identity: %s" % ("PASS" if identity_ok(checks) else "FAIL"), flush=True)


# --------------------------------------------------------------------------- the plot
def plot(results, png):
    """Runs in the bootstrap venv (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = runs_of(load_records(results))
    fig, axes = plt.subplots(2, 2, figsize=(22, 12))
    (ax_loss, ax_dev), (ax_err, ax_traj) = axes
    styles = ["-", "--", "-.", ":"]
    markers = ["o", "s", "^", "v", "D", "x", "+", "*"]
    if not runs:
        for ax in axes.ravel():
            ax.text(0.5, 0.5, "no env recorded a family", ha="center", va="center", transform=ax.transAxes)
    fits = [(lab, d["fit"]) for lab, d in runs if "fit" in d]
    if fits:
        curves = np.array([f["epoch_loss"] for _, f in fits], dtype=float) if \
            len({len(f["epoch_loss"]) for _, f in fits}) == 1 else None
        per_epoch = fits[0][1]["steps"] // max(len(fits[0][1]["epoch_loss"]), 1)
        center = np.median(curves, axis=0) if curves is not None else None
        for i, (lab, f) in enumerate(fits):
            steps = per_epoch * (np.arange(len(f["epoch_loss"])) + 1)
            ax_loss.plot(steps, f["epoch_loss"], styles[i % 4], color="C%d" % (i % 10), marker=markers[i % 8],
                         markevery=(i, len(fits) + 3),
                         ms=4, lw=1.3, label="%s (final %.6g)" % (lab, f["final_loss"]))
            if center is not None:
                ax_dev.plot(steps, (np.asarray(f["epoch_loss"]) - center) / center, styles[i % 4],
                            color="C%d" % (i % 10),
                            marker=markers[i % 8], markevery=(i, len(fits) + 3), ms=4, lw=1.2, label=lab)
        ax_loss.set_yscale("log")
        ax_loss.set_title("200-step model.fit with optcompat.AdamW: epoch loss, every env")
        ax_loss.set_xlabel("optimizer step")
        ax_loss.set_ylabel("training loss (MSE)")
        ax_loss.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=2)
        ax_dev.axhline(LOSS_RTOL, color="red", lw=0.8, ls=":")
        ax_dev.axhline(-LOSS_RTOL, color="red", lw=0.8, ls=":", label="+-%g (final-loss tolerance)" % LOSS_RTOL)
        ax_dev.set_title("same fit: relative difference from the median over envs")
        ax_dev.set_xlabel("optimizer step")
        ax_dev.set_ylabel("(loss - median) / median")
        ax_dev.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=2)
    cases = sorted({c for _, d in runs for c in d.get("fixed", {})})
    k = 0
    for lab, d in runs:
        for j, case in enumerate(cases):
            if case not in d.get("fixed", {}):
                continue
            err = np.maximum(np.asarray(d["fixed"][case]["max_abs_error_vs_reference"], float), 1e-12)
            ax_err.plot(np.arange(1, len(err) + 1), err, styles[j % 4], color="C%d" % (k % 10), marker=markers[k % 8],
                        markevery=(k, 7),
                        ms=4, lw=1.2, label="%s %s" % (lab, case))
        k += 1
    if runs:
        ax_err.axhline(TRAJ_TOL, color="red", lw=0.8, ls=":", label="tolerance %g" % TRAJ_TOL)
        ax_err.set_yscale("log")
        ax_err.set_title("fixed-gradient run: max |weights - float64 reference| per step")
        ax_err.set_xlabel("step")
        ax_err.set_ylabel("max abs error")
        ax_err.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=2)
    for j, case in enumerate(cases):
        trajs = [(lab, np.asarray(d["fixed"][case]["trajectory"], float)) for lab, d in runs
                 if case in d.get("fixed", {})]
        if len({t.shape for _, t in trajs}) != 1:
            continue
        center = np.median(np.stack([t for _, t in trajs]), axis=0)
        for i, (lab, t) in enumerate(trajs):
            dev = np.maximum(np.max(np.abs(t - center), axis=1), 1e-12)
            ax_traj.plot(np.arange(1, len(dev) + 1), dev, styles[j % 4], color="C%d" % (i % 10), marker=markers[i % 8],
                         markevery=(i, 7), ms=4, lw=1.2, label="%s %s" % (lab, case))
    if runs:
        ax_traj.axhline(TRAJ_TOL, color="red", lw=0.8, ls=":", label="tolerance %g" % TRAJ_TOL)
        ax_traj.set_yscale("log")
        ax_traj.set_title("fixed-gradient run: max |weights - median over envs| per step")
        ax_traj.set_xlabel("step")
        ax_traj.set_ylabel("max abs difference (1e-12 = identical)")
        ax_traj.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=2)
    fig.suptitle("optcompat: the same training runs in every env (%d env x family runs)" % len(runs))
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plot_identity(runs, os.path.join(os.path.dirname(png), "identity.png"))
    return 0


FAMILY_TITLES = {"legacy": "OptimizerV2 (TF 1.15-2.15, tf_keras legacy)", "keras2": "Keras 2 (TF 2.9-2.15, tf_keras)",
                 "keras3": "Keras 3 (jax, torch, tensorflow)"}


def plot_identity(runs, png):
    """The home page's picture (docs/identity.png): the 200-step fit's loss, one curve per env x
    family, on top of each other, a panel per family; and the largest difference between them."""
    import matplotlib.pyplot as plt
    import numpy as np

    fits = [(lab, d["fit"]) for lab, d in runs if "fit" in d]
    families = [f for f in ("legacy", "keras2", "keras3") if any(lab.endswith("/" + f) for lab, _ in fits)]
    fig, grid = plt.subplots(2, 2, figsize=(10, 7.5))
    axes = list(grid.ravel())
    for extra in axes[len(families) + 1:]:
        extra.set_visible(False)
    axes = axes[:len(families)] + [axes[-1]]
    if not fits:
        fig.savefig(png, dpi=100)
        return
    per_epoch = fits[0][1]["steps"] // max(len(fits[0][1]["epoch_loss"]), 1)
    for ax, family in zip(axes, families):
        mine = [(lab, f) for lab, f in fits if lab.endswith("/" + family)]
        for i, (lab, f) in enumerate(mine):
            steps = per_epoch * (np.arange(len(f["epoch_loss"])) + 1)
            ax.plot(steps, f["epoch_loss"], color="C%d" % families.index(family), lw=1.0, alpha=0.6)
        envs = sorted((lab.split("/")[0] for lab, _ in mine), key=natural)
        ax.set_title("%s\n%d releases: %s ... %s" % (FAMILY_TITLES[family], len(mine), envs[0], envs[-1]), fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    for ax in axes[:len(families)]:
        ax.set_ylabel("training loss, one curve per release")
    ax = axes[-1]
    if len({len(f["epoch_loss"]) for _, f in fits}) == 1:
        curves = np.array([f["epoch_loss"] for _, f in fits], dtype=float)
        center = np.median(curves, axis=0)
        spread = (curves.max(axis=0) - curves.min(axis=0)) / center
        steps = per_epoch * (np.arange(curves.shape[1]) + 1)
        ax.plot(steps, np.maximum(spread, 1e-12), color="black", lw=1.5,
                label="largest - smallest loss, all %d runs" % len(fits))
        ax.axhline(LOSS_RTOL, color="red", lw=1.0, ls=":", label="the tests' tolerance (%g)" % LOSS_RTOL)
        ax.set_yscale("log")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_title("How far apart the curves are\n(relative to the median loss)", fontsize=9)
    ax.set_xlabel("optimizer step")
    ax.grid(alpha=0.3)
    fig.suptitle("The same model.fit with optcompat.AdamW on every TensorFlow / Keras release", fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=100)


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--envs", help="comma-separated tox envs")
    ap.add_argument("--label", help="a tox.ini label, e.g. matrix")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="envs at a time (default: cores)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs"), help="where matrix.md, matrix.png, results/ go")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from OUT/results")
    ap.add_argument("--check", action="store_true",
                    help="only check OUT/results: cross-release identity, no pre-release (and --latest-patch)")
    ap.add_argument("--latest-patch", action="store_true",
                    help="also fail an env whose TensorFlow / Keras / tf-keras is not the newest patch of its "
                         "minor that the package registry serves (asks the registry: pip index versions)")
    ap.add_argument("--no-newest", action="store_true",
                    help="do not check the envs of tox.ini [optcompat:newest] against the registry's newest "
                         "releases (checked by default; it asks the registry: pip index versions)")
    ap.add_argument("--chain-only", action="store_true",
                    help="only hand a training run through the envs of tox.ini [optcompat:state-chain] "
                         "(tests/test_state_chain.py); the matrix runs it after its envs when it has them all")
    ap.add_argument("--resume", action="store_true",
                    help="go on with a cut-off run: keep OUT/results' records of the selection that have the "
                         "working tree's source digest and passed, run only the other envs (and a state chain "
                         "whose file is missing, of another digest or failed); without it, OUT/results is "
                         "emptied first")
    ap.add_argument("--plot", nargs=2, metavar=("RESULTS", "PNG"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.plot:
        return plot(*args.plot)
    newest = None if args.no_newest else newest_declared()
    out = os.path.abspath(args.out)
    results = os.path.join(out, "results")
    if args.check:
        records = load_records(results)
        if not records:
            print("identity: no records in %s" % results, file=sys.stderr)
            return 1
        checks = identity(records)
        print_checks(checks)
        bad = version_failures(records, args.latest_patch, newest=newest)
        print_version_checks(records, bad, args.latest_patch, newest)
        source = source_check(records, results)
        print_source_check(source, source_info()["source"])
        return 0 if identity_ok(checks) and not bad and source["ok"] else 1
    if args.report_only:
        recs = load_records(results)
        command = next((r["run"]["command"] for r in recs if r.get("run", {}).get("command")), "python ci/matrix.py")
        when = next((r["run"]["started"] for r in recs if r.get("run", {}).get("started")), None)
        ident, plotted, versions_ok, one_source = write_report(out, command, when, latest=args.latest_patch,
                                                               newest=newest)
        return 0 if ident and plotted and versions_ok and one_source else 1
    source = source_info()
    print("matrix: source %s (sha256 of %s), commit %s%s" % (
        source["source"], ", ".join(SOURCE_PATHS), source["commit"],
        ", the tree dirty in those files" if source["dirty"] else ""), flush=True)
    if args.chain_only:
        for folder in (results, TOXWORKDIR):
            if not os.path.isdir(folder):
                os.makedirs(folder)
        command = "python ci/matrix.py --chain-only" + (" --resume" if args.resume else "")
        return 0 if run_chains(None, results, command, args.resume, source) is not False else 1
    envs = select_envs(args.envs, args.label)
    command = ("python ci/matrix.py " + " ".join(
        (["--envs " + ",".join(envs)] if args.envs else ["--label " + args.label] if args.label else [])
        + ["-j %d" % args.jobs] + (["--latest-patch"] if args.latest_patch else [])
        + (["--no-newest"] if args.no_newest else []) + (["--resume"] if args.resume else []))).strip()
    if not os.path.isdir(TOXWORKDIR):
        os.makedirs(TOXWORKDIR)
    to_run = envs
    if args.resume:
        kept, to_run = resume_plan(envs, results, source["source"])
        print("matrix: --resume: kept %d envs (records of this source that passed): %s" % (
            len(kept), ", ".join(kept) or "none"), flush=True)
        print("matrix: --resume: running %d envs: %s" % (len(to_run), ", ".join(to_run) or "none"), flush=True)
        others = [r["env"] for r in load_records(results)
                  if r["env"] not in envs and r.get("source") != source["source"]]
        if others:
            print("matrix: --resume: records outside the selection of another source (the report will fail until "
                  "they are rerun or removed): %s" % ", ".join(others), flush=True)
    started = time.time()
    if to_run:
        envs_ok, total_s = run_matrix(to_run, max(1, min(args.jobs, len(to_run))), results, command,
                                      os.path.join(TOXWORKDIR, "matrix.log"), newest, args.resume, source)
    else:
        envs_ok, total_s = True, 0.0
    chain_ok = run_chains(envs, results, command, args.resume, source)  # None: none ran (or all kept)
    ident, plotted, versions_ok, one_source = write_report(out, command, utc(started), total_s, args.latest_patch,
                                                           newest)
    print("matrix: envs %s, identity %s, versions %s, source %s, state chain %s, plot %s; %.0fs in all" % (
        "OK" if envs_ok else "FAILED", "PASS" if ident else "FAIL", "PASS" if versions_ok else "FAIL",
        "PASS" if one_source else "FAIL (records of several sources)",
        "not run" if chain_ok is None else "PASS" if chain_ok else "FAIL", "OK" if plotted else "FAILED",
        time.time() - started))
    return 0 if envs_ok and ident and versions_ok and one_source and plotted and chain_ok is not False else 1


if __name__ == "__main__":
    sys.exit(main())
