"""The matrix tooling (ci/matrix.py, ci/record.py): the cross-release identity check fails when
it should, test counts are read right, and the recorder copes with an env that has no family.
The cross-env check itself runs in ci/matrix.py over every env's record, not here."""
import copy
import importlib.util
import json
import os
import subprocess

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


# -- the source a record tested, and --resume -------------------------------------------------
def _repo(tmp_path):
    """A small git checkout with the layout SOURCE_PATHS names, committed; and its git."""
    root = tmp_path / "repo"
    files = {"optcompat/__init__.py": "x = 1\n", "tests/test_a.py": "def test_a():\n    pass\n",
             "ci/record.py": "# recorder\n", "ci/matrix.py": "# runner\n", "tox.ini": "[tox]\n",
             "setup.cfg": "[metadata]\n", "pyproject.toml": "", "README.md": "readme\n", ".gitignore": "*.pyc\n"}
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c",
                               "commit.gpgsign=false"] + list(args), cwd=str(root), check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout.decode().strip()

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    return root, git


def test_the_source_digest_is_stable_and_changes_with_what_the_envs_test(tmp_path):
    root, git = _repo(tmp_path)
    first = matrix.source_digest(str(root))
    assert first == matrix.source_digest(str(root)) and len(first) == 64
    assert matrix.source_info(str(root)) == {"source": first, "commit": git("rev-parse", "HEAD"), "dirty": False}
    # files outside SOURCE_PATHS (the runner and report included) and ignored files: the same source
    (root / "README.md").write_text("changed\n")
    (root / "ci" / "matrix.py").write_text("# the report changed\n")
    (root / "tests" / "cached.pyc").write_bytes(b"\0")
    assert matrix.source_digest(str(root)) == first and not matrix.source_info(str(root))["dirty"]
    # a byte of a test, the package, tox.ini or the recorder: another source, the tree dirty
    for rel in ("tests/test_a.py", "optcompat/__init__.py", "tox.ini", "ci/record.py"):
        path = root / rel
        before = path.read_text()
        path.write_text(before + "# edit\n")
        info = matrix.source_info(str(root))
        assert info["source"] != first and info["dirty"], rel
        path.write_text(before)
        assert matrix.source_info(str(root)) == {"source": first, "commit": git("rev-parse", "HEAD"), "dirty": False}
    # a new test module pytest would collect, a deleted file, a renamed one: another source
    (root / "tests" / "test_b.py").write_text("def test_b():\n    pass\n")
    assert matrix.source_digest(str(root)) != first and matrix.source_info(str(root))["dirty"]
    os.remove(str(root / "tests" / "test_b.py"))
    os.remove(str(root / "setup.cfg"))
    assert matrix.source_digest(str(root)) != first
    git("checkout", "--", "setup.cfg")
    git("mv", "tests/test_a.py", "tests/test_c.py")
    assert matrix.source_digest(str(root)) != first
    git("commit", "-q", "-m", "renamed")
    info = matrix.source_info(str(root))
    assert info["source"] != first and not info["dirty"] and info["commit"] == git("rev-parse", "HEAD")


def _env_record(results, env, source, status="OK", **run):
    rec = {"env": env, "families": {}, "errors": {}, "source": source, "commit": "c0ffee", "dirty": False,
           "run": dict({"status": status, "tests": {"passed": 1, "failed": 0, "errors": 0, "skipped": 0}}, **run)}
    matrix.save_record(os.path.join(str(results), env + ".json"), rec)
    return rec


def test_resume_keeps_the_records_of_this_source_that_passed_and_runs_the_rest(tmp_path):
    _env_record(tmp_path, "tf22", "S")
    _env_record(tmp_path, "tf23", "S", status="FAIL")
    _env_record(tmp_path, "tf24", "OTHER")
    _env_record(tmp_path, "tf25", None)  # written before the digest was recorded
    with open(str(tmp_path / "tf26.json"), "w") as f:
        json.dump({"env": "tf27", "source": "S", "run": {"status": "OK"}}, f)  # not tf26's record
    keep, run = matrix.resume_plan(["tf22", "tf23", "tf24", "tf25", "tf26", "tf28"], str(tmp_path), "S")
    assert keep == ["tf22"] and run == ["tf23", "tf24", "tf25", "tf26", "tf28"]
    # a run clears only the envs it runs under --resume, everything without it
    matrix.save_record(str(tmp_path / matrix.chain_file("state-chain")), {"name": "state-chain", "source": "S"})
    matrix.clear_records(str(tmp_path), run, resume=True)
    assert sorted(os.listdir(str(tmp_path))) == ["state_chain.json", "tf22.json"]
    matrix.clear_records(str(tmp_path), ["tf28"])
    assert os.listdir(str(tmp_path)) == []


def test_main_resume_runs_only_the_envs_without_a_kept_record(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    results = out / "results"
    results.mkdir(parents=True)
    kept = _env_record(results, "tf22", "S")
    _env_record(results, "tf23", "OTHER")
    calls = []

    def fake_run_matrix(envs, jobs, results_dir, command, log_path, newest=None, resume=False, source=None):
        calls.append((list(envs), resume, command, source["source"]))
        matrix.clear_records(results_dir, envs, resume)
        for env in envs:
            _env_record(results_dir, env, source["source"])
        return True, 1.0

    chains = []
    monkeypatch.setattr(matrix, "TOXWORKDIR", str(tmp_path / "tox"))
    monkeypatch.setattr(matrix, "source_info", lambda root=None: {"source": "S", "commit": "c0ffee", "dirty": False})
    monkeypatch.setattr(matrix, "run_matrix", fake_run_matrix)
    monkeypatch.setattr(matrix, "run_chains", lambda envs, res, command, resume=False, source=None: chains.append(
        (list(envs), resume)))
    monkeypatch.setattr(matrix, "write_report", lambda *a, **k: (True, True, True, True))
    assert matrix.main(["--envs", "tf22,tf23,tf24", "--resume", "--no-newest", "--out", str(out)]) == 0
    assert calls == [(["tf23", "tf24"], True, "python ci/matrix.py --envs tf22,tf23,tf24 -j %d --no-newest --resume"
                      % (os.cpu_count() or 1), "S")]
    assert chains == [(["tf22", "tf23", "tf24"], True)]
    printed = capsys.readouterr().out
    assert "kept 1 envs (records of this source that passed): tf22" in printed
    assert "running 2 envs: tf23, tf24" in printed
    assert matrix.load_record(str(results / "tf22.json")) == kept  # never rewritten
    # everything kept: nothing runs, the kept records stay
    calls[:] = []
    assert matrix.main(["--envs", "tf22,tf23,tf24", "--resume", "--no-newest", "--out", str(out)]) == 0
    assert calls == [] and matrix.load_record(str(results / "tf22.json")) == kept
    # without --resume: every env runs, results/ emptied first
    assert matrix.main(["--envs", "tf22,tf23", "--no-newest", "--out", str(out)]) == 0
    assert calls[-1][:2] == (["tf22", "tf23"], False) and sorted(os.listdir(str(results))) == ["tf22.json",
                                                                                               "tf23.json"]


def test_under_resume_a_chain_runs_again_when_missing_failed_or_of_another_source(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(matrix, "chain_stages", lambda name="state-chain": ["tf26", "keras3-jax"])
    monkeypatch.setattr(matrix, "run_chain", lambda stages, results, log, command, name, source=None: ran.append(
        (name, source["source"])) or True)
    monkeypatch.setattr(matrix, "TOXWORKDIR", str(tmp_path))
    source = {"source": "S", "commit": "c0ffee", "dirty": False}
    matrix.save_record(str(tmp_path / "state_chain.json"), {"name": "state-chain", "source": "S", "ok": True})
    matrix.save_record(str(tmp_path / "state_chain_raw.json"), {"name": "state-chain-raw", "source": "OLD",
                                                                "ok": True})
    assert matrix.run_chains(["tf26", "keras3-jax"], str(tmp_path), "cmd", resume=True, source=source) is True
    assert ran == [("state-chain-raw", "S"), ("state-chain-torch", "S")]  # the torch chain's file is missing
    matrix.save_record(str(tmp_path / "state_chain_raw.json"), {"name": "state-chain-raw", "source": "S",
                                                                "ok": False})
    matrix.save_record(str(tmp_path / "state_chain_torch.json"), {"name": "state-chain-torch", "source": "S",
                                                                  "ok": True})
    ran[:] = []
    matrix.run_chains(["tf26", "keras3-jax"], str(tmp_path), "cmd", resume=True, source=source)
    assert ran == [("state-chain-raw", "S")]  # it failed: run again
    ran[:] = []
    assert matrix.run_chains(["tf26", "keras3-jax"], str(tmp_path), "cmd", resume=True, source=source) is True
    ran[:] = []
    matrix.run_chains(["tf26", "keras3-jax"], str(tmp_path), "cmd", source=source)  # no --resume: every chain
    assert [name for name, _ in ran] == list(matrix.CHAINS)
    ran[:] = []
    assert matrix.run_chains(["tf26"], str(tmp_path), "cmd", resume=True, source=source) is None and ran == []


def test_records_of_several_sources_fail_the_report_and_the_check_naming_envs_and_digests(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for env in ("tf22", "tf23"):
        _env_record(results, env, "a" * 64)
    _env_record(results, "tf24", "b" * 64)
    records = matrix.load_records(str(results))
    check = matrix.source_check(records, str(results))
    assert not check["ok"]
    assert matrix.source_failure(check) == "records of 2 sources: %s (tf22, tf23); %s (tf24)" % ("a" * 64, "b" * 64)
    md = matrix.render_markdown(records, [], "python ci/matrix.py", "now", "matrix.png", results=str(results))
    assert "**Source: FAIL**" in md
    assert "* `%s`: `tf22`, `tf23`" % ("a" * 64) in md and "* `%s`: `tf24`" % ("b" * 64) in md
    assert matrix.main(["--check", "--no-newest", "--out", str(tmp_path)]) == 1
    # one source: passes, and the report states digest and commit
    _env_record(results, "tf24", "a" * 64)
    assert matrix.main(["--check", "--no-newest", "--out", str(tmp_path)]) == 0
    md = matrix.render_markdown(matrix.load_records(str(results)), [], "c", "now", "matrix.png", results=str(results))
    assert "Source: every record is of the same code, sha256 `%s`" % ("a" * 64) in md and "commit `c0ffee`" in md
    # a state chain's file of another source fails too; a record without a digest beside digests fails
    matrix.save_record(str(results / "state_chain.json"), {"name": "state-chain", "source": "c" * 64, "ok": True,
                                                           "stages": [], "done": []})
    assert "(state-chain)" in matrix.source_failure(matrix.source_check(matrix.load_records(str(results)),
                                                                        str(results)))
    assert matrix.main(["--check", "--no-newest", "--out", str(tmp_path)]) == 1
    os.remove(str(results / "state_chain.json"))
    _env_record(results, "tf25", None)
    assert matrix.main(["--check", "--no-newest", "--out", str(tmp_path)]) == 1
    # records from before the digest was recorded, all of them: said, not failed
    for env in ("tf22", "tf23", "tf24"):
        _env_record(results, env, None)
    assert matrix.source_check(matrix.load_records(str(results)))["ok"]
    assert "Source: not recorded" in matrix.render_markdown(matrix.load_records(str(results)), [], "c", "now", "p.png")


def test_a_record_whose_source_changed_while_the_env_ran_is_of_no_source(tmp_path, monkeypatch):
    monkeypatch.setattr(matrix, "TOXWORKDIR", str(tmp_path))
    now = matrix.source_info()
    rec = matrix.collect("tf22", "OK", 10.0, str(tmp_path), 0.0, "cmd", source=now)
    assert (rec["source"], rec["commit"], rec["dirty"]) == (now["source"], now["commit"], now["dirty"])
    stale = dict(now, source="0" * 64)
    rec = matrix.collect("tf23", "OK", 10.0, str(tmp_path), 0.0, "cmd", source=stale)
    assert rec["source"] is None and "changed while the env ran" in rec["source_note"]
    assert matrix.resume_plan(["tf23"], str(tmp_path), "0" * 64) == ([], ["tf23"])


def test_the_header_says_how_many_sittings_and_sums_their_wall_time(tmp_path):
    first = {"sitting": 1000.0, "started": "2026-12-04 03:39 UTC", "command": "python ci/matrix.py --label matrix",
             "total_s": 4000.0, "finished": 4990.0}
    second = {"sitting": 90000.0, "started": "2026-12-05 09:00 UTC", "total_s": 3865.0, "finished": 93800.0,
              "command": "python ci/matrix.py --label matrix --resume"}
    records = [_env_record(tmp_path, "tf22", "S", **first), _env_record(tmp_path, "tf23", "S", **first),
               _env_record(tmp_path, "tf24", "S", **second)]
    md = matrix.render_markdown(records, [], second["command"], "2026-12-05 09:00 UTC", "m.png", 3865.0, 2)
    header = next(line for line in md.splitlines() if line.startswith("Generated"))
    assert header.startswith("Generated in 2 sittings, resumed with `--resume` (`python ci/matrix.py --label "
                             "matrix` on 2026-12-04 03:39 UTC: 2 envs, 4000 s; `python ci/matrix.py --label matrix "
                             "--resume` on 2026-12-05 09:00 UTC: 1 env, 3865 s)")
    assert "7865 s wall time in all, summed over the 2 sittings, on 2 cores" in header
    # a sitting cut off before it wrote its total: counted from its start to its last env's end, and said
    del records[0]["run"]["total_s"], records[1]["run"]["total_s"]
    md = matrix.render_markdown(records, [], second["command"], "now", "m.png", 3865.0, 2)
    assert "2 envs, 3990 s (cut off: to its last env's end)" in md and "7855 s wall time in all" in md
    # one sitting: as before, from the record (a --resume that ran nothing does not restart the clock)
    md = matrix.render_markdown(records[2:], [], "python ci/matrix.py --resume", "later", "m.png", 0.0, 2)
    assert ("Generated by `python ci/matrix.py --label matrix --resume` on 2026-12-05 09:00 UTC (optcompat ?; "
            "3865 s wall time in all on 2 cores)") in md
