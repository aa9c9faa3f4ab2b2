"""The matrix tooling (ci/matrix.py, ci/record.py): the cross-release identity check fails when
it should, test counts are read right, and the recorder copes with an env that has no family.
The cross-env check itself runs in ci/matrix.py over every env's record, not here."""
import copy
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    spec = importlib.util.spec_from_file_location("ci_" + name, os.path.join(ROOT, "ci", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


matrix = _load("matrix")
record = _load("record")


def fake_run(loss=0.25, shift=0.0):
    traj = [[0.1 * t + shift, -0.2 * t] for t in range(1, 41)]
    fixed = {"optimizer": "AdamW", "trajectory": traj, "max_abs_error_vs_reference": [1e-6] * 40}
    return {"host": "fake", "fixed": {"AdamW": fixed},
            "fit": {"config": {"epochs": 50}, "steps": 200, "epoch_loss": [1.0, loss], "final_loss": loss}}


def records(*runs):
    return [{"env": "env%d" % i, "families": {"keras3": r}, "errors": {}} for i, r in enumerate(runs)]


def status(checks, word):
    return [c["status"] for c in checks if word in c["check"]]


def test_identical_envs_pass():
    checks = matrix.identity(records(fake_run(), fake_run(), fake_run()))
    assert matrix.identity_ok(checks)
    assert status(checks, "difference between envs") == ["PASS", "PASS"]


def test_trajectory_beyond_2e5_fails():
    checks = matrix.identity(records(fake_run(), fake_run(shift=3e-5)))
    assert status(checks, "trajectory, max abs difference") == ["FAIL"]
    assert not matrix.identity_ok(checks)
    # and just inside the tolerance passes
    assert matrix.identity_ok(matrix.identity(records(fake_run(), fake_run(shift=1e-5))))


def test_final_loss_beyond_1e4_relative_fails():
    checks = matrix.identity(records(fake_run(loss=0.25), fake_run(loss=0.25 * (1 + 2e-4))))
    assert status(checks, "final loss") == ["FAIL"]
    assert matrix.identity_ok(matrix.identity(records(fake_run(loss=0.25), fake_run(loss=0.25 * (1 + 5e-5)))))


def test_reference_error_and_recorder_errors_fail():
    bad = fake_run()
    bad["fixed"]["AdamW"]["max_abs_error_vs_reference"] = [1e-3] * 40
    assert status(matrix.identity(records(bad, fake_run())), "vs float64 reference") == ["FAIL"]
    recs = records(fake_run(), fake_run())
    recs[1]["errors"] = {"legacy": "Traceback ...\nValueError: boom"}
    assert not matrix.identity_ok(matrix.identity(recs))


def test_mismatched_fit_settings_fail():
    other = copy.deepcopy(fake_run())
    other["fit"]["config"] = {"epochs": 10}
    assert not matrix.identity_ok(matrix.identity(records(fake_run(), other)))


def test_a_fit_that_stopped_early_fails():
    short = fake_run()
    short["fit"]["iterations"] = 150
    assert not matrix.identity_ok(matrix.identity(records(fake_run(), short)))


def test_one_run_is_not_a_comparison():
    checks = matrix.identity(records(fake_run()))
    assert status(checks, "difference between envs") == ["n/a", "n/a"]
    assert matrix.identity_ok(checks)


def test_junit_counts(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="5" failures="1" errors="1" '
        'skipped="1"><testcase classname="tests.test_a" name="test_x[keras3]"><failure message="no"/>'
        '</testcase></testsuite></testsuites>')
    n = matrix.junit_counts(str(xml))
    assert (n["passed"], n["failed"], n["errors"], n["skipped"]) == (2, 1, 1, 1)
    assert n["failing"] == ["tests.test_a::test_x[keras3]"]


def test_tox_finish_lines():
    envs = ["keras3-jax", "tf28"]
    assert matrix.parse_finish("keras3-jax: OK \u2714 in 16.62 seconds", envs) == ("keras3-jax", "OK", 16.62)
    assert matrix.parse_finish("keras3-jax: OK \u2714 in 1 minute 8.5 seconds", envs) == ("keras3-jax", "OK", 68.5)
    assert matrix.parse_finish("tf28: FAIL \u2716 in 2 minutes 1 second", envs) == ("tf28", "FAIL", 121.0)
    final = "  tf28: FAIL code 1 (3.21=setup[1.00]+cmd[2.21] seconds)"
    assert matrix.parse_finish(final, envs) == ("tf28", "FAIL", 3.21)
    assert matrix.parse_finish("tests/test_x.py: 3 warnings", envs) is None
    assert matrix.parse_finish("tf215: OK \u2714 in 1 seconds", envs) is None  # not one of ours


def test_record_without_a_family_says_so():
    rec = record.record("some-env", families=[])
    assert rec["env"] == "some-env" and rec["families"] == {} and rec["errors"] == {}
    assert "no family" in rec["note"]


def test_fit_problem_is_fixed():
    x1, y1, w1 = record.fit_problem()
    x2, y2, w2 = record.fit_problem()
    assert (x1 == x2).all() and (y1 == y2).all() and all((a == b).all() for a, b in zip(w1, w2))
    assert [w.shape for w in w1] == [(4, 8), (8,), (8, 1), (1,)]
    assert record.numpy_loss(w1, x1, y1) > 0.1  # the fit has something to learn


def test_bad_selection_is_refused():
    with pytest.raises(SystemExit):
        matrix.select_envs("keras3-jax", "matrix")  # both --envs and --label
    with pytest.raises(SystemExit):
        matrix.select_envs(None, "no-such-label")
    with pytest.raises(SystemExit):
        matrix.select_envs("keras3-jax,rm -rf", None)


def test_labels_come_from_tox_ini():
    env_list, labels = matrix.tox_config()
    assert "keras3-jax" in env_list
    assert "tf22" in labels["matrix"] and set(env_list) <= set(labels["matrix"])
    assert matrix.select_envs(None, None) == env_list


def versioned(env="tf213", distributions=None, **versions):
    """A record with the host versions ``optcompat.describe()`` reads and, optionally, every
    installed distribution (as ci/record.py writes them)."""
    rec = {"env": env, "python": "3.8.18", "families": {}, "errors": {},
           "describe": {"versions": dict(dict(keras=None, tf_keras=None, jax=None, torch=None), **versions)}}
    if distributions is not None:
        rec["distributions"] = distributions
    return rec


def test_prerelease_versions_are_recognised():
    for v in ["2.13.0rc1", "2.13.0-rc1", "2.5.0.dev2021032900", "1.0b2", "0.4.26a1", "3.0.0.post1.dev0"]:
        assert matrix.is_prerelease(v), v
    for v in ["2.13.1", "2.15.0.post1", "2.13.0+cpu", "0.10.2", "", None, "unknown"]:
        assert not matrix.is_prerelease(v), v


def test_a_prerelease_fails_the_env_naming_the_package():
    rc = versioned(tensorflow="2.13.0rc1", keras="2.13.1", tensorflow_addons="0.21.0")
    assert matrix.prerelease_failure(rc) == "pre-release resolved: tensorflow 2.13.0rc1"
    assert matrix.version_failures([rc]) == {"tf213": ["pre-release resolved: tensorflow 2.13.0rc1"]}
    # from the record's distributions too, for any distribution, under its own name
    dists = versioned(tensorflow="2.13.1", distributions={"tensorflow-cpu": "2.13.1", "typing_extensions": "4.5.0",
                                                          "protobuf": "4.24.0rc2"})
    assert matrix.prerelease_failure(dists) == "pre-release resolved: protobuf 4.24.0rc2"


def test_a_clean_record_passes():
    clean = versioned(tensorflow="2.13.1", keras="2.13.1", tensorflow_addons="0.21.0",
                      distributions={"tensorflow-cpu": "2.13.1", "keras": "2.13.1", "numpy": "1.24.3",
                                     "torch": "2.13.0+cpu", "tensorflow-estimator": "2.15.0.post1"})
    assert matrix.prereleases(clean) == [] and matrix.prerelease_failure(clean) is None
    assert matrix.version_failures([clean]) == {}
    # a *-nightly distribution that a host release pins (TF 2.5: keras-nightly) is shown, not failed
    nightly = versioned(env="tf25", tensorflow="2.5.3", distributions={"keras-nightly": "2.5.0.dev2021032900"})
    assert matrix.prereleases(nightly) == [{"package": "keras-nightly", "version": "2.5.0.dev2021032900",
                                            "fails": False}]
    assert matrix.prerelease_failure(nightly) is None


def test_the_report_says_which_envs_resolved_a_prerelease():
    rc = versioned(tensorflow="2.13.0rc1")
    rc["run"] = {"status": "OK", "tests": {"passed": 3, "failed": 0, "errors": 0, "skipped": 1, "deselected": 2}}
    clean = versioned(env="tf212", tensorflow="2.12.1")
    md = matrix.render_markdown([clean, rc], [], "python ci/matrix.py", "now", "matrix.png")
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| `tf")}
    assert "| none |" in rows["`tf212`"] and "**FAIL**" not in rows["`tf212`"]
    assert "**tensorflow 2.13.0rc1**" in rows["`tf213`"] and rows["`tf213`"].endswith("| **FAIL** |")
    assert "| 1 | 2 |" in rows["`tf213`"]  # skipped, deselected
    assert "`tf213` failed: pre-release resolved: tensorflow 2.13.0rc1" in md


def test_pytest_deselected_count():
    assert matrix.pytest_deselected("== 5 passed, 2 skipped, 3 deselected in 1.20s ==\n") == 3
    assert matrix.pytest_deselected("============ 5 passed in 0.5s ============") == 0
    assert matrix.pytest_deselected("7 passed, 1 deselected in 0.33s") == 1  # -q
    assert matrix.pytest_deselected("== 9 passed, 4 deselected, 2 warnings in 75.00s (0:01:15) ==") == 4
    assert matrix.pytest_deselected("tests/test_x.py: 3 warnings\nno summary here") is None


def test_latest_patch_check():
    served = {"tensorflow-cpu": ["2.14.0", "2.13.1", "2.13.0", "2.13.0rc2"], "keras": ["2.13.1", "2.13.1rc0"]}
    versions_of = lambda name, python: served.get(name)  # noqa: E731
    old = versioned(tensorflow="2.13.0", keras="2.13.1", distributions={"tensorflow-cpu": "2.13.0", "keras": "2.13.1"})
    assert matrix.not_latest_patch(old, versions_of) == ["tensorflow-cpu 2.13.0 (latest 2.13.1)"]
    new = versioned(tensorflow="2.13.1", keras="2.13.1", distributions={"tensorflow-cpu": "2.13.1", "keras": "2.13.1"})
    assert matrix.not_latest_patch(new, versions_of) == []
    assert matrix.version_failures([new], latest=True, versions_of=versions_of) == {}


def test_the_test_command_reads_each_envs_pytest_summary(tmp_path, monkeypatch):
    """ci/test.py (the README's test command) prints each env's pytest summary line from the
    env's newest command log (colours removed); an env without one has none."""
    tool = _load("test")
    log = tmp_path / "tf22" / "log"
    log.mkdir(parents=True)
    (log / "1-commands[0].log").write_text("== 9 passed in 1.00s ==\n")
    os.utime(str(log / "1-commands[0].log"), (1000, 1000))  # an older run's log
    (log / "2-commands[0].log").write_text(
        "tests/test_x.py ....\n\x1b[32m===== 5 passed, 1 skipped, 2 deselected in 3.10s =====\x1b[0m\nrecorded\n")
    monkeypatch.setattr(tool.matrix, "TOXWORKDIR", str(tmp_path))
    assert tool.summary_line("tf22", 2000) == "===== 5 passed, 1 skipped, 2 deselected in 3.10s ====="
    assert tool.summary_line("tf22", 0) == "===== 5 passed, 1 skipped, 2 deselected in 3.10s ====="
    assert tool.summary_line("tf23", 0) is None


def _chain(name, stages, ok, diff):
    runs = [{"run": {"optimizer": "optcompat.legacy.AdamW", "iterations": 25 * (i + 1)}} for i in range(len(stages))]
    if diff is not None:
        runs[-1]["run"]["max_abs_diff_vs_straight"] = diff
    return {"name": name, "stages": stages, "ok": ok, "command": "python ci/matrix.py --chain-only",
            "started": "2026-12-05 08:00 UTC", "wall_s": 80.0,
            "done": [{"env": e, "rc": 0, "wall_s": 20.0, "runs": r} for e, r in zip(stages, runs)]}


def test_the_state_chains_come_from_tox_ini_and_report_apart(tmp_path):
    """The model.fit chain and the raw-variable (custom loop) chain: both declared in tox.ini,
    the raw one TF 2.6 -> TF 2.15 -> Keras 3 on JAX -> TF 2.6 (issue 34), each with its own
    results file and section, a failure of one not hidden by the other."""
    assert matrix.CHAINS == ("state-chain", "state-chain-raw", "state-chain-torch")
    assert matrix.chain_stages("state-chain-torch") == ["keras3-torch", "keras3-tf", "keras3-torch"]
    assert matrix.chain_stages("state-chain") == ["tf115-cp37", "tf26", "tf215", "keras3-jax", "keras3-torch"]
    raw = matrix.chain_stages("state-chain-raw")
    assert raw == ["tf26", "tf215", "keras3-jax", "tf26"]
    for name, ok, diff in (("state-chain", True, 3e-7), ("state-chain-raw", False, 2e-4)):
        with open(str(tmp_path / matrix.chain_file(name)), "w") as f:
            json.dump(_chain(name, matrix.chain_stages(name), ok, diff), f)
    text = "\n".join(matrix.render_chain(str(tmp_path)))
    assert "**State chain: PASS**" in text and "**Raw-variable chain: FAIL**" in text
    assert "25 steps of `model.fit`" in text and "custom training loop" in text
    assert "| run | `tf26` | `tf215` | `keras3-jax` | `tf26` |" in text
    assert "| 3e-07 | PASS |" in text and "| 0.0002 | **FAIL** |" in text


def test_newest_envs_are_declared_in_tox_ini():
    """tox.ini's [optcompat:newest]: the "newest" envs and the distributions that must be the
    registry's newest in each (every one an env of env_list)."""
    declared = matrix.newest_declared()
    assert declared["keras3-torch"] == ["keras", "torch"]
    assert declared["keras3-jax"] == ["keras", "jax"]
    assert declared["keras3-tf"] == ["keras", "tensorflow-cpu"]
    assert declared["tf221"] == declared["tf221-cp312"] == ["tensorflow"]
    assert declared["tf221-tfkeras"] == declared["tf221-tfkeras-legacy"] == ["tensorflow", "tf-keras"]
    env_list, labels = matrix.tox_config()
    assert set(declared) <= set(env_list) and set(declared) <= set(labels["matrix"])


def test_newest_check_fails_an_env_behind_the_registry_naming_package_version_and_newest():
    served = {"torch": ["2.15.0", "2.16.0rc1", "2.14.1", "2.13.0+cpu", "2.13.0"],
              "keras": ["3.16.0.dev2026112403", "3.15.1", "3.15.0"]}
    asked = []

    def versions_of(name, python):
        asked.append((name, python))
        return served.get(name)

    newest = {"keras3-torch": ["keras", "torch"]}
    old = versioned(env="keras3-torch", distributions={"keras": "3.15.1", "torch": "2.13.0+cpu", "numpy": "2.3.0"})
    old["python"] = "3.11.7"
    assert matrix.not_newest(old, ["keras", "torch"], versions_of) == ["torch 2.13.0+cpu (newest 2.15.0)"]
    assert ("torch", "3.11") in asked  # the registry is asked for the env's own Python
    reason = "not the newest release: torch 2.13.0+cpu (newest 2.15.0)"
    assert matrix.newest_failure(old, newest, versions_of) == reason
    assert matrix.version_failures([old], versions_of=versions_of, newest=newest) == {"keras3-torch": [reason]}
    # the newest final release, a local CUDA build counted as its release: passes (pre-releases
    # and dev releases on the registry are not "newer")
    new = versioned(env="keras3-torch", distributions={"keras": "3.15.1", "torch": "2.15.0+cu132"})
    assert matrix.not_newest(new, ["keras", "torch"], versions_of) == []
    assert matrix.version_failures([new], versions_of=versions_of, newest=newest) == {}
    # an env that declares nothing is not checked; no newest map: no check
    other = versioned(env="keras3-torch-k33", distributions={"keras": "3.3.3", "torch": "2.13.0+cpu"})
    assert matrix.version_failures([other], versions_of=versions_of, newest=newest) == {}
    assert matrix.version_failures([old], versions_of=versions_of) == {}


def test_newest_check_fails_where_the_registry_cannot_be_asked_or_the_package_is_missing():
    newest = {"tf221": ["tensorflow"]}
    rec = versioned(env="tf221", distributions={"tensorflow": "2.21.0"})
    rec["python"] = "3.13.0"
    no_answer = matrix.newest_failure(rec, newest, lambda name, python: None)
    assert no_answer == ("not the newest release: tensorflow 2.21.0 (newest unknown: the registry could not "
                         "be asked for Python 3.13)")

    def offline(name, python):
        raise OSError("no network")
    assert "could not be asked for Python 3.13: no network" in matrix.newest_failure(rec, newest, offline)
    only_rc = matrix.newest_failure(rec, newest, lambda name, python: ["2.22.0rc0"])
    assert "serves no final release for Python 3.13" in only_rc
    missing = versioned(env="tf221", distributions={"tensorflow-cpu": "2.21.0"})
    assert "tensorflow not installed" in matrix.newest_failure(missing, newest, lambda n, p: ["2.21.0"])
    # the same env on the newest: passes
    assert matrix.newest_failure(rec, newest, lambda n, p: ["2.22.0rc0", "2.21.0", "2.20.0"]) is None


def test_the_report_has_the_newest_check(tmp_path):
    served = {"torch": ["2.15.0", "2.13.0"], "keras": ["3.15.1"]}
    versions_of = lambda name, python: served.get(name)  # noqa: E731
    newest = {"keras3-torch": ["keras", "torch"]}
    old = versioned(env="keras3-torch", distributions={"keras": "3.15.1", "torch": "2.13.0+cpu"})
    old["run"] = {"status": "OK", "tests": {"passed": 3, "failed": 0, "errors": 0, "skipped": 0}}
    bad = matrix.version_failures([old], versions_of=versions_of, newest=newest)
    md = matrix.render_markdown([old], [], "python ci/matrix.py", "now", "matrix.png", version_bad=bad,
                                newest=newest, versions_of=versions_of)
    row = next(line for line in md.splitlines() if line.startswith("| `keras3-torch` | 3.8"))
    assert row.endswith("| **FAIL** |")
    assert "`keras3-torch` failed: not the newest release: torch 2.13.0+cpu (newest 2.15.0)" in md
    assert "## Newest releases" in md
    assert "| `keras3-torch` | 3.8 | keras | 3.15.1 | 3.15.1 | PASS |" in md
    assert "| `keras3-torch` | 3.8 | torch | 2.13.0+cpu | 2.15.0 | **FAIL**: torch 2.13.0+cpu (newest 2.15.0) |" in md
    # --no-newest: the report says the check was left out
    md = matrix.render_markdown([old], [], "python ci/matrix.py", "now", "matrix.png", newest=None)
    assert "Not checked (`--no-newest`)." in md
