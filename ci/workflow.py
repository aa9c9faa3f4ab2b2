#!/usr/bin/env python3
"""The GitHub Actions workflow, written from tox.ini: ``.github/workflows/tests.yml``.

    python ci/workflow.py            (re)write the workflow from tox.ini
    python ci/workflow.py --check    exit 1, with a diff, where the committed workflow is not what
                                     tox.ini gives (an env added to or dropped from a label, another
                                     base_python, another tox requirement); the lint env runs this

The workflow holds one job per tox env, each ``tox -e ENV`` on a fresh runner with the Python the
env's ``base_python`` names (actions/setup-python) beside the Python tox itself needs:

* ``ci``: the envs of tox.ini's label ``ci``, on every push and pull request;
* ``full``: the envs of the labels ``matrix``, ``dist`` and ``peers`` (the peers' files are
  fetched first with ``ci/peer_files.py``), weekly and on a manual run (workflow_dispatch);
* ``gpu``: the envs of the label ``gpu``, on a self-hosted runner labelled ``gpu``, on the same
  triggers, where the repository variable ``OPTCOMPAT_GPU_RUNNER`` is ``true`` (elsewhere the job is
  skipped rather than left waiting for a runner that does not exist).

The file is generated, never edited by hand: the job lists are tox.ini's labels, so a label
changed in tox.ini and not here fails ``--check``.  Python 3.8+, standard library only.
"""
import argparse
import configparser
import difflib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOX_INI = os.path.join(ROOT, "tox.ini")
WORKFLOW = os.path.join(ROOT, ".github", "workflows", "tests.yml")

# tox's current releases need Python 3.11+ (ci/tox bootstraps it likewise); the env's own Python
# is set up beside it, and tox-uv finds it on PATH
TOX_PYTHON = "3.11"
# the labels each job runs: push / pull request; weekly + manual (the full matrix and the dist and
# peers legs); the GPU envs
PUSH_LABELS = ("ci",)
SCHEDULED_LABELS = ("matrix", "dist", "peers")
GPU_LABELS = ("gpu",)
GPU_RUNS_ON = ("self-hosted", "linux", "gpu")
GPU_SWITCH = "OPTCOMPAT_GPU_RUNNER"
# a fixed image, not ubuntu-latest: actions/setup-python's Python 3.8 (TF 2.2-2.13) exists for it
RUNS_ON = "ubuntu-24.04"
CRON = "17 3 * * 1"  # Mondays 03:17 UTC: the full matrix is ~50 jobs of multi-GB installs

_CONDITION = re.compile(r"^([A-Za-z0-9_.!,\- ]+):\s*(.*)$")
_PYTHON = re.compile(r"^(?:c?python|py)?(\d)\.?(\d+)$")


def _split(text):
    return [e for e in re.split(r"[,\s]+", text) if e]


def read_tox(path=TOX_INI):
    cfg = configparser.ConfigParser(interpolation=None)
    if not os.path.isfile(path):
        raise SystemExit("workflow: no tox.ini at %s" % path)
    with open(path) as f:
        cfg.read_file(f)
    return cfg


def labels(cfg):
    """tox.ini's ``[tox] labels``: {label: [env, ...]} in the file's order."""
    out = {}
    for line in cfg["tox"].get("labels", "").splitlines():
        if "=" in line:
            name, _, envs = line.partition("=")
            out[name.strip()] = _split(envs)
    return out


def requires(cfg):
    return [line.strip() for line in cfg["tox"].get("requires", "").splitlines() if line.strip()]


def _applies(condition, factors):
    """tox 4's factor condition: any comma-separated group whose ``-``-joined factors all hold
    (``!f``: f absent)."""
    for group in condition.split(","):
        parts = [p.strip() for p in group.strip().split("-") if p.strip()]
        if parts and all((p[1:] not in factors) if p.startswith("!") else (p in factors)
                         for p in parts):
            return True
    return False


def base_python(cfg, env):
    """The Python version (``"3.11"``) tox gives ``env``: its own section's ``base_python`` or
    else ``[testenv]``'s, the first line whose factor condition matches; else a ``pyXY`` factor."""
    factors = set(env.split("-"))
    for section in ("testenv:" + env, "testenv"):
        if not cfg.has_option(section, "base_python"):
            continue
        for line in cfg[section]["base_python"].splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = _CONDITION.match(line)
            if m:
                if not _applies(m.group(1), factors):
                    continue
                line = m.group(2).strip()
            version = _PYTHON.match(line)
            if not version:
                raise SystemExit("workflow: %s's base_python %r is not a CPython version"
                                 % (env, line))
            return "%s.%s" % version.groups()
        break  # a section's own base_python, matching or not, is tox's answer
    for factor in factors:
        version = re.match(r"^py(3)(\d+)$", factor)
        if version:
            return "%s.%s" % version.groups()
    raise SystemExit("workflow: tox.ini gives %s no base_python: the workflow cannot tell which "
                     "Python to set up" % env)


def _envs_of(all_labels, names):
    envs = []
    for name in names:
        if name not in all_labels:
            raise SystemExit("workflow: tox.ini has no label %r (labels: %s)"
                             % (name, ", ".join(sorted(all_labels))))
        envs += [e for e in all_labels[name] if e not in envs]
    return envs


def _matrix(cfg, envs):
    lines = ["    strategy:", "      fail-fast: false", "      matrix:", "        include:"]
    for env in envs:
        lines.append('          - {env: %s, python: "%s"%s}' % (
            env, base_python(cfg, env), ", peers: true" if "peers" in env.split("-") else ""))
    return lines


def _steps(reqs, with_peers):
    install = " ".join('"%s"' % r for r in reqs)
    lines = [
        "    steps:",
        "      - uses: actions/checkout@v5",
        "      - name: the env's Python (tox.ini base_python), then tox's",
        "        uses: actions/setup-python@v6",
        "        with:",
        "          python-version: |",
        "            ${{ matrix.python }}",
        "            %s" % TOX_PYTHON,
        "      - name: uv's cache (tox-uv installs every env's deps with uv)",
        "        uses: actions/cache@v5",
        "        with:",
        "          path: ~/.cache/uv",
        "          key: uv-${{ runner.os }}-${{ matrix.env }}-${{ hashFiles('tox.ini') }}",
        "          restore-keys: uv-${{ runner.os }}-${{ matrix.env }}-",
        "      - name: tox + tox-uv (tox.ini [tox] requires)",
        "        run: python -m pip install --disable-pip-version-check %s" % install,
    ]
    if with_peers:
        lines += [
            "      - name: the peers' own test files (ci/peer_files.py)",
            "        if: matrix.peers",
            "        run: python ci/peer_files.py",
        ]
    lines += [
        "      - name: tox -e ${{ matrix.env }}",
        "        run: tox -e ${{ matrix.env }}",
        "      - name: the env's records and JUnit report",
        "        if: always()",
        "        uses: actions/upload-artifact@v6",
        "        with:",
        "          name: ${{ github.job }}-${{ matrix.env }}",
        "          path: |",
        "            .tox/results/",
        "            .tox/${{ matrix.env }}/tmp/junit.xml",
        "          if-no-files-found: ignore",
    ]
    return lines


def render(cfg):
    """The workflow's text for the tox.ini in ``cfg``."""
    all_labels = labels(cfg)
    reqs = requires(cfg)
    push_envs = _envs_of(all_labels, PUSH_LABELS)
    scheduled_envs = _envs_of(all_labels, SCHEDULED_LABELS)
    gpu_envs = _envs_of(all_labels, GPU_LABELS)
    scheduled = "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'"
    lines = [
        "# GENERATED by ci/workflow.py from tox.ini -- do not edit: change tox.ini, then run",
        "# `python ci/workflow.py`; its --check (in the lint env) fails when the two differ.",
        "# One job per tox env, `tox -e ENV` on a fresh runner, the env's base_python set up:",
        "#   ci    label %s: every push and pull request" % ", ".join(PUSH_LABELS),
        "#   full  labels %s: weekly and on a manual run" % ", ".join(SCHEDULED_LABELS),
        "#   gpu   label %s: the same, on a self-hosted runner labelled %s," % (
            ", ".join(GPU_LABELS), ", ".join(GPU_RUNS_ON)),
        "#         only where the repository variable %s is 'true'" % GPU_SWITCH,
        "# The torch envs install PyPI's CUDA torch build on a hosted runner, a few GB per torch",
        "# job: keras3-torch's torch 2.15 (tox.ini deps, uv), the older Keras's 2.13 (pip, commands_pre).",
        "name: tests",
        "",
        "on:",
        "  push:",
        "  pull_request:",
        "  schedule:",
        '    - cron: "%s"' % CRON,
        "  workflow_dispatch:",
        "",
        "permissions:",
        "  contents: read",
        "",
        "concurrency:",
        "  group: ${{ github.workflow }}-${{ github.event_name }}-${{ github.ref }}",
        "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}",
        "",
        "jobs:",
        "  ci:",
        '    name: "ci: ${{ matrix.env }}"',
        "    if: github.event_name == 'push' || github.event_name == 'pull_request'",
        "    runs-on: %s" % RUNS_ON,
        "    timeout-minutes: 90",
    ]
    lines += _matrix(cfg, push_envs)
    lines += _steps(reqs, any("peers" in e.split("-") for e in push_envs))
    lines += [
        "",
        "  full:",
        '    name: "full: ${{ matrix.env }}"',
        "    if: %s" % scheduled,
        "    runs-on: %s" % RUNS_ON,
        "    timeout-minutes: 120",
    ]
    lines += _matrix(cfg, scheduled_envs)
    lines += _steps(reqs, any("peers" in e.split("-") for e in scheduled_envs))
    lines += [
        "",
        "  gpu:",
        '    name: "gpu: ${{ matrix.env }}"',
        "    if: (%s) && vars.%s == 'true'" % (scheduled, GPU_SWITCH),
        "    runs-on: [%s]" % ", ".join(GPU_RUNS_ON),
        "    timeout-minutes: 120",
    ]
    lines += _matrix(cfg, gpu_envs)
    lines += _steps(reqs, any("peers" in e.split("-") for e in gpu_envs))
    return "\n".join(lines) + "\n"


def check(tox_ini=TOX_INI, workflow=WORKFLOW):
    """0 when ``workflow`` is what ``tox_ini`` gives, else 1 after printing the difference."""
    want = render(read_tox(tox_ini))
    names = (os.path.relpath(workflow), os.path.relpath(tox_ini))
    try:
        with open(workflow) as f:
            have = f.read()
    except FileNotFoundError:
        have = ""
    if have == want:
        print("workflow: %s is current with %s" % names)
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        have.splitlines(True), want.splitlines(True), fromfile=workflow, tofile="from " + tox_ini))
    print("workflow: %s differs from what %s gives (-: the file, +: tox.ini); "
          "run `python ci/workflow.py` and commit it" % names)
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 where the workflow is stale")
    parser.add_argument("--tox-ini", default=TOX_INI, help="the tox.ini to read (the repo's)")
    parser.add_argument("--workflow", default=WORKFLOW, help="the workflow file (the repo's)")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.tox_ini, args.workflow)
    text = render(read_tox(args.tox_ini))
    os.makedirs(os.path.dirname(os.path.abspath(args.workflow)), exist_ok=True)
    with open(args.workflow, "w") as f:
        f.write(text)
    print("workflow: wrote %s" % os.path.relpath(args.workflow))
    return 0


if __name__ == "__main__":
    sys.exit(main())
