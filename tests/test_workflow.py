"""The GitHub Actions workflow is tox.ini's: ci/workflow.py --check fails when a label's envs or an
env's base_python in tox.ini no longer match .github/workflows/tests.yml (run on edited copies of
tox.ini, against the committed workflow), and passes on the committed pair."""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOX_INI = os.path.join(ROOT, "tox.ini")
WORKFLOW = os.path.join(ROOT, ".github", "workflows", "tests.yml")

_spec = importlib.util.spec_from_file_location("ci_workflow",
                                               os.path.join(ROOT, "ci", "workflow.py"))
workflow = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(workflow)


def edited_tox_ini(tmp_path, old, new):
    with open(TOX_INI) as f:
        text = f.read()
    assert text.count(old) == 1, "tox.ini changed: the test's edit %r no longer applies" % old
    path = tmp_path / "tox.ini"
    path.write_text(text.replace(old, new))
    return str(path)


def check_command(tox_ini):
    return subprocess.run([sys.executable, os.path.join(ROOT, "ci", "workflow.py"), "--check",
                           "--tox-ini", tox_ini, "--workflow", WORKFLOW],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


def test_the_committed_workflow_is_current():
    out = check_command(TOX_INI)
    assert out.returncode == 0, out.stdout + out.stderr


def test_an_env_dropped_from_the_ci_label_is_drift(tmp_path):
    ini = edited_tox_ini(tmp_path, "tf24-cp37, tf28, tf215,", "tf24-cp37, tf215,")
    out = check_command(ini)
    assert out.returncode == 1
    assert '-          - {env: tf28, python: "3.8"}' in out.stdout  # the diff names the env


def test_an_env_added_to_the_gpu_label_is_drift(tmp_path):
    ini = edited_tox_ini(tmp_path, "gpu = keras3-jax-gpu,", "gpu = tf215-gpu, keras3-jax-gpu,")
    out = check_command(ini)
    assert out.returncode == 1
    assert '+          - {env: tf215-gpu, python: "3.11"}' in out.stdout


def test_another_base_python_is_drift(tmp_path):
    ini = edited_tox_ini(tmp_path, "tf214,tf215,tf216,tf217,tf218,tf219,tf220,tf221-tfkeras: python3.11",
                         "tf214,tf215,tf216,tf217,tf218,tf219,tf220,tf221-tfkeras: python3.12")
    out = check_command(ini)
    assert out.returncode == 1
    assert '+          - {env: tf215, python: "3.12"}' in out.stdout


def test_a_missing_workflow_fails(tmp_path):
    assert workflow.check(TOX_INI, str(tmp_path / "tests.yml")) == 1


@pytest.mark.parametrize("env, python", [
    ("lint", "3.11"),              # its own section's base_python
    ("tf22-dist", "3.8"),          # [testenv]'s factor line tf22,...
    ("tf221-tfkeras-peers", "3.11"),
    ("keras3-jax-gpu", "3.11"),
    ("keras3-torch-k33", "3.11"),
])
def test_base_python_follows_tox_factors(env, python):
    assert workflow.base_python(workflow.read_tox(TOX_INI), env) == python


def test_an_env_without_a_base_python_is_refused(tmp_path):
    ini = edited_tox_ini(tmp_path, "gpu = keras3-jax-gpu,", "gpu = jax-gpu, keras3-jax-gpu,")
    with pytest.raises(SystemExit, match="jax-gpu no base_python"):
        workflow.render(workflow.read_tox(ini))


def test_the_jobs_are_the_labels():
    cfg = workflow.read_tox(TOX_INI)
    text = workflow.render(cfg)
    jobs = text.split("\n  ci:\n")[1].split("\n  full:\n")
    push, (scheduled, gpu) = jobs[0], jobs[1].split("\n  gpu:\n")
    labels = workflow.labels(cfg)
    for envs, job in ((labels["ci"], push), (labels["gpu"], gpu),
                      (labels["matrix"] + labels["dist"] + labels["peers"], scheduled)):
        assert [line.split("env: ")[1].split(",")[0] for line in job.splitlines()
                if line.startswith("          - {env: ")] == list(dict.fromkeys(envs))
    assert "runs-on: [self-hosted, linux, gpu]" in gpu
    assert "if: matrix.peers" in scheduled and "python ci/peer_files.py" in scheduled
