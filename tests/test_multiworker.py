"""tf.distribute.MultiWorkerMirroredStrategy with two real worker processes on 127.0.0.1 (TF_CONFIG,
free ports, bounded in time, killed on every exit path): model.fit over both workers equals one
device on the same global batch -- the decay applied once per step, not once per worker -- for
AdamW (amsgrad, a schedule, an exclusion) and SGDW with momentum, in every convention.
Collected in the envs of tox's label ``dist`` only (marker ``dist``: OPTCOMPAT_ENV_DIST=1)."""
import json
import os
import signal
import textwrap
import time

import numpy as np
import pytest

from deviations import match
from processes import finish
from processes import free_ports
from processes import start
from support import CONVENTIONS

TESTS = os.path.dirname(os.path.abspath(__file__))
GLOBAL_BATCH, EPOCHS = 16, 2
TIMEOUT = 170  # seconds for the two workers together (each case under 3 minutes)

# a worker: its TF_CONFIG (argv: family, index, cluster, result file, ...) before TensorFlow starts,
# then the strategy (TF 2.2-2.3: under .experimental)
_HEAD = textwrap.dedent("""
    import json, os, sys, time
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": sys.argv[3].split(",")},
                                          "task": {"type": "worker", "index": int(sys.argv[2])}})
    sys.path.insert(0, %(tests)r)
    import tensorflow as tf
    import test_multiworker as case

    strategy = (getattr(tf.distribute, "MultiWorkerMirroredStrategy", None)
                or tf.distribute.experimental.MultiWorkerMirroredStrategy)()
""")
_TAIL = textwrap.dedent("""
    if int(sys.argv[2]) == 0:
        with open(sys.argv[4], "w") as f:
            json.dump(out, f)
""")
WORKER = _HEAD + textwrap.dedent("""
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    try:
        out = case.train_all(sys.argv[1], strategy, own=sys.argv[5] == "host")
    except Exception as e:  # a host that cannot (deviations: "multiworker"): its error, for the test
        out = {"error": "%%s: %%s" %% (type(e).__name__, str(e)[:300])}
""") + _TAIL


def cases():
    """{name: (optimizer, arguments)}: each convention, AdamW and SGDW."""
    out = {}
    for convention in CONVENTIONS:
        out["adamw-" + convention] = ("AdamW", dict(learning_rate=("exp", 0.02, 4, 0.5), weight_decay=0.1,
                                                    amsgrad=True, exclude_from_weight_decay=["bias"],
                                                    convention=convention))
        out["sgdw-" + convention] = ("SGDW", dict(learning_rate=0.05, weight_decay=0.1, momentum=0.9,
                                                  convention=convention))
    return out


def train_all(family, strategy=None, decay_scale=1.0, own=False):
    """Every case's weights after ``model.fit`` (global batch GLOBAL_BATCH, no shuffling), under
    ``strategy`` where given (``decay_scale`` times each weight_decay): {case: flat weights}.
    ``own``: the host's own AdamW in one case instead."""
    import tensorflow as tf

    from support import data
    from support import make_host

    host = make_host(family)
    x, y = data(64)
    out = {}
    chosen = {"host-adamw": ("host", dict(learning_rate=0.01, weight_decay=0.1))} if own else cases()
    for name, (cls, kwargs) in sorted(chosen.items()):
        kw = dict(kwargs, weight_decay=kwargs["weight_decay"] * decay_scale)
        scope = strategy.scope() if strategy is not None else _null()
        with scope:
            if isinstance(kw["learning_rate"], tuple):
                kw["learning_rate"] = host.exponential_decay(*kw["learning_rate"][1:])
            model = host.dense_model()
            opt = host.host_adamw(**kw) if cls == "host" else host.make(cls, **kw)
            model.compile(optimizer=opt, loss="mean_squared_error")
        # repeated, with steps_per_epoch: TF 2.2-2.3 need it for a dataset sharded across workers
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).repeat()
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        model.fit(dataset.with_options(options), epochs=EPOCHS, steps_per_epoch=len(x) // GLOBAL_BATCH, verbose=0)
        out[name] = np.concatenate([w.ravel() for w in model.get_weights()]).tolist()
    return out


class _null(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_workers(family, tmp_path, own=False):
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "worker.py"
    script.write_text(WORKER % {"tests": TESTS})
    result = tmp_path / "result.json"
    cluster = ",".join("127.0.0.1:%d" % p for p in free_ports(2))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    env.pop("TF_CONFIG", None)
    finish(start(script, [[family, i, cluster, result, "host" if own else "optcompat"] for i in range(2)], env),
           TIMEOUT, "the workers")
    with open(str(result)) as f:
        return json.load(f)


@pytest.mark.dist
@pytest.mark.backends("tensorflow")
@pytest.mark.applies(lambda facts, params: match("multiworker", facts.family, facts.versions) is None)
def test_multi_worker_fit_equals_one_device(host, tmp_path):
    distributed = run_workers(host.family, tmp_path)
    assert "error" not in distributed, distributed
    single = train_all(host.family)
    worst = {}
    for name, weights in single.items():
        worst[name] = float(np.max(np.abs(np.asarray(distributed[name]) - np.asarray(weights))))
    print("multi-worker vs one device, max |difference| per case: %s" % worst)
    assert set(distributed) == set(single) and max(worst.values()) <= 1e-6, worst
    # the decay matters here: one applied twice per step (once per worker) would show
    doubled = train_all(host.family, decay_scale=2.0)
    assert min(float(np.max(np.abs(np.asarray(doubled[n]) - np.asarray(w)))) for n, w in single.items()) > 1e-4


@pytest.mark.dist
@pytest.mark.backends("tensorflow")
@pytest.mark.applies(lambda facts, params: match("multiworker", facts.family, facts.versions) is not None)
def test_multi_worker_fit_fails_with_the_hosts_own_optimizer_too(host, tmp_path):
    """Where the deviations table says the host's fit cannot run under the strategy: its own AdamW
    raises (else the entry is stale), and optcompat's raises the same error type, not a wrong result."""
    theirs = run_workers(host.family, tmp_path / "host", own=True)
    assert "error" in theirs, "the host's own AdamW trains under MultiWorkerMirroredStrategy now: " \
        "remove the deviations entry"
    ours = run_workers(host.family, tmp_path / "optcompat")
    assert "error" in ours and ours["error"].split(":")[0] == theirs["error"].split(":")[0], (ours, theirs)


# -- a worker killed mid-epoch, both restarted: BackupAndRestore ------------------------------------

FT_WORKER = _HEAD + textwrap.dedent("""
    out = case.train_resumable(sys.argv[1], strategy, sys.argv[5], sys.argv[6] if len(sys.argv) > 6 else None)
""") + _TAIL
FT_EPOCHS, FT_STEPS = 3, 4


def train_resumable(family, strategy, backup_dir, crash_marker=None):
    """AdamW (a schedule, amsgrad) for FT_EPOCHS epochs with BackupAndRestore; with
    ``crash_marker``, stop in epoch 1 after its second step (write the marker, then wait to be
    killed).  Returns the weights, the step counter and every optimizer variable."""
    import time

    import tensorflow as tf

    from support import data
    from support import make_host

    host = make_host(family)
    x, y = data(64)
    scope = strategy.scope() if strategy is not None else _null()
    with scope:
        model = host.dense_model()
        opt = host.make("AdamW", learning_rate=host.exponential_decay(0.02, 4, 0.5), weight_decay=0.1, amsgrad=True)
        model.compile(optimizer=opt, loss="mean_squared_error")
    class Count(host.keras.callbacks.Callback):
        steps = 0

        def on_train_batch_end(self, batch, logs=None):
            Count.steps += 1

    callbacks = [Count()]
    if backup_dir is not None:
        cbs = host.keras.callbacks
        backup = getattr(cbs, "BackupAndRestore", None) or cbs.experimental.BackupAndRestore  # TF 2.3-2.7
        callbacks.append(backup(backup_dir))
    if crash_marker:
        class Crash(host.keras.callbacks.Callback):
            epoch = 0

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                if self.epoch == 1 and batch == 1:
                    open(crash_marker, "w").close()
                    time.sleep(600)  # killed here

        callbacks.append(Crash())
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    model.fit(dataset.with_options(options), epochs=FT_EPOCHS, steps_per_epoch=FT_STEPS, callbacks=callbacks,
              verbose=0)
    variables = opt.variables() if callable(opt.variables) else opt.variables
    return {"weights": np.concatenate([w.ravel() for w in model.get_weights()]).tolist(),
            "iterations": int(host.value(opt.iterations)), "steps_run": Count.steps,
            "optimizer": sorted([v.name if hasattr(v, "name") else str(i), np.asarray(host.value(v)).ravel().tolist()]
                                for i, v in enumerate(variables) if "iter" not in v.name)}


def launch(script, family, cluster, result, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    env.pop("TF_CONFIG", None)
    return start(script, [[family, i, cluster, result] + list(extra) for i in range(2)], env)


def _kill(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.dist
@pytest.mark.backends("tensorflow")
@pytest.mark.applies(lambda facts, params: match("multiworker", facts.family, facts.versions) is None
                     and not facts.at(tensorflow="<2.3"))  # BackupAndRestore: TF 2.3+
def test_a_killed_worker_resumes_with_backup_and_restore(host, tmp_path):
    """Worker 1 SIGKILLed in the middle of epoch 1 (worker 0 then killed as well: its collectives
    would wait forever), both restarted: BackupAndRestore resumes from the last epoch it saved and
    the run ends where one uninterrupted device ends -- weights, step counter and every optimizer
    variable (moments, vhat, the schedule through the step) within 1e-6."""
    script = tmp_path / "ft_worker.py"
    script.write_text(FT_WORKER % {"tests": TESTS})
    backup, marker, result = tmp_path / "backup", tmp_path / "crashed", tmp_path / "result.json"
    deadline = time.time() + TIMEOUT
    cluster = ",".join("127.0.0.1:%d" % p for p in free_ports(2))
    procs = launch(script, host.family, cluster, result, str(backup), str(marker))
    try:
        while not marker.exists():
            assert time.time() < deadline, "no worker reached the crash point within %d s" % TIMEOUT
            assert all(p.poll() is None for p in procs), "\n----\n".join(p.stdout.read()[-3000:] for p in procs)
            time.sleep(0.2)
        os.kill(procs[1].pid, signal.SIGKILL)
        procs[1].wait()
        assert procs[1].returncode == -signal.SIGKILL
    finally:
        _kill(procs)
    assert not result.exists()
    cluster = ",".join("127.0.0.1:%d" % p for p in free_ports(2))
    finish(launch(script, host.family, cluster, result, str(backup)), max(1, deadline - time.time()),
           "the restarted workers")
    with open(str(result)) as f:
        resumed = json.load(f)
    straight = train_resumable(host.family, None, None)
    assert resumed["iterations"] == straight["iterations"] == FT_EPOCHS * FT_STEPS
    # the restart ran the epochs after the last one backed up (epoch 0), not the whole run again
    assert (resumed["steps_run"], straight["steps_run"]) == ((FT_EPOCHS - 1) * FT_STEPS, FT_EPOCHS * FT_STEPS)
    assert np.max(np.abs(np.asarray(resumed["weights"]) - straight["weights"])) <= 1e-6
    ours = [np.asarray(v) for _, v in resumed["optimizer"]]
    theirs = [np.asarray(v) for _, v in straight["optimizer"]]
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs)) <= 1e-6
