"""tf.distribute.ParameterServerStrategy with real processes on 127.0.0.1: a chief (the
coordinator, running model.fit), 2 workers and 2 parameter servers (TF_CONFIG, free ports, bounded
in time, every process killed on every exit path).

Parameter-server training is asynchronous: each worker reads the variables, computes a step and
writes it back while the other may do the same, so two runs differ by the order the scheduler
gave the steps -- with the host's own optimizers too.  Here ``steps_per_execution`` is the epoch's
step count, so ``fit`` schedules one closure per epoch and waits for it: the steps run in one
order, on whichever worker, and the result is comparable.  Each worker's dataset holds exactly
one epoch of batches, so whichever worker runs an epoch starts it at the same batch.

Checked: every optimizer slot lives on the parameter server of its variable (the variables are
spread round-robin over the two), ``fit`` equals one device for AdamW (amsgrad, a schedule, an
exclusion) and SGDW with momentum in every convention, and optcompat equals the host's own
AdamW (Adam where the family has no AdamW) under the same strategy.  Keras 3 cannot train under
the strategy with its own optimizers either (tests/deviations.py): there the host's error is
asserted and optcompat's must be the same kind.  Collected in the envs of tox's label ``dist``."""
import json
import os
import textwrap

import numpy as np
import pytest

from deviations import match
from processes import finish
from processes import free_ports
from processes import start
from test_multiworker import GLOBAL_BATCH
from test_multiworker import _null
from test_multiworker import cases
from test_multiworker import train_all

TESTS = os.path.dirname(os.path.abspath(__file__))
EPOCHS, STEPS = 2, 4  # as test_multiworker's fit: 64 samples, global batch 16
TIMEOUT = 170  # seconds for the five processes together (each case under 3 minutes)

_CONFIG = textwrap.dedent("""
    import json, os, sys
    cluster = json.loads(sys.argv[1])
    os.environ["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": sys.argv[2], "index": int(sys.argv[3])}})
    os.environ["GRPC_FAIL_FAST"] = "use_caller"  # a lost worker fails the closure, not hangs
    sys.path.insert(0, %(tests)r)
    import tensorflow as tf
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
""")
# a worker or a parameter server: a gRPC server until it is killed
SERVER = _CONFIG + textwrap.dedent("""
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                  task_index=resolver.task_id, protocol=resolver.rpc_layer or "grpc", start=True)
    server.join()
""")
CHIEF = _CONFIG + textwrap.dedent("""
    import test_parameter_server as case
    strategy = tf.distribute.experimental.ParameterServerStrategy(resolver)
    out = case.train_all_ps(sys.argv[4], strategy)
    with open(sys.argv[5], "w") as f:
        json.dump(out, f)
""")


def _host_case(host):
    """The host's own optimizer and optcompat's with the same arguments: AdamW, or Adam and
    AdamW(weight_decay=0) where the family has no AdamW (OptimizerV2)."""
    kw = dict(learning_rate=0.01, weight_decay=0.1)
    theirs = host.host_adamw(**kw)
    if theirs is None:
        kw["weight_decay"] = 0.0
        theirs = host.host_adam(learning_rate=kw["learning_rate"])
    return theirs, host.make("AdamW", convention="keras", **kw)


def train_all_ps(family, strategy=None):
    """{case: {"weights", "iterations", "devices"}} after ``fit`` under ``strategy`` (one device
    where None): test_multiworker's cases, and "host" / "host-optcompat" (``_host_case``).
    ``devices``: [[optimizer variable, its device, the device of the model variable it is a
    slot of]] for every slot.  Under a strategy, a case that raises gives {"error": its type and
    message} (a host that cannot: deviations "parameter_server")."""
    from support import data
    from support import make_host

    host = make_host(family)
    x, y = data(64)
    out = {}
    names = sorted(cases()) + ["host", "host-optcompat"]
    for name in names:
        if strategy is None:
            out[name] = _train_one(host, name, None, x, y)
            continue
        try:
            out[name] = _train_one(host, name, strategy, x, y)
        except Exception as e:
            out[name] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
    return out


def _train_one(host, name, strategy, x, y):
    """One case's ``fit``: see train_all_ps."""
    import tensorflow as tf

    scope = strategy.scope() if strategy is not None else _null()
    with scope:
        model = host.dense_model()
        if name.startswith("host"):
            opt = _host_case(host)[name != "host"]
        else:
            cls, kw = cases()[name]
            kw = dict(kw)
            if isinstance(kw["learning_rate"], tuple):
                kw["learning_rate"] = host.exponential_decay(*kw["learning_rate"][1:])
            opt = host.make(cls, **kw)
        model.compile(optimizer=opt, loss="mean_squared_error", steps_per_execution=STEPS)

    def dataset_fn(context=None):  # one epoch of batches, repeated
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).repeat()

    creator = getattr(getattr(host.keras.utils, "experimental", None), "DatasetCreator", None)
    inputs = creator(dataset_fn) if creator is not None and strategy is not None else dataset_fn()
    model.fit(inputs, epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0)
    variables = opt.variables() if callable(opt.variables) else opt.variables
    owners = sorted(((v.name.split(":")[0], v) for v in model.trainable_variables), key=lambda kv: -len(kv[0]))
    devices = []
    for v in variables:
        owner = next((w for n, w in owners if n in v.name and tuple(v.shape) == tuple(w.shape)), None)
        if owner is not None:
            devices.append([v.name, v.device, owner.device])
    return {"weights": np.concatenate([w.ravel() for w in model.get_weights()]).tolist(),
            "iterations": int(host.value(opt.iterations)), "devices": devices}


def run_cluster(family, tmp_path):
    """The chief's result: 2 workers and 2 parameter servers started, the chief run to its end,
    then every process killed."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    server, chief = tmp_path / "server.py", tmp_path / "chief.py"
    server.write_text(SERVER % {"tests": TESTS})
    chief.write_text(CHIEF % {"tests": TESTS})
    ports = ["127.0.0.1:%d" % p for p in free_ports(5)]
    cluster = json.dumps({"chief": ports[:1], "worker": ports[1:3], "ps": ports[3:]})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    env.pop("TF_CONFIG", None)
    servers = start(server, [[cluster, job, i] for job, i in (("worker", 0), ("worker", 1), ("ps", 0), ("ps", 1))],
                    env)
    result = tmp_path / "result.json"
    try:
        finish(start(chief, [[cluster, "chief", 0, family, result]], env), TIMEOUT, "the chief")
    finally:
        for p in servers:  # they serve until killed; every exit path
            if p.poll() is None:
                p.kill()
            p.wait()
    with open(str(result)) as f:
        return json.load(f)


def _supported(facts):
    return match("parameter_server", facts.family, facts.versions) is None


@pytest.mark.dist
@pytest.mark.backends("tensorflow")
@pytest.mark.applies(lambda facts, params: _supported(facts) and not facts.at(tensorflow="<2.6"))
def test_parameter_server_fit_equals_one_device_and_the_host(host, tmp_path):
    ps = run_cluster(host.family, tmp_path)
    assert not [n for n, r in ps.items() if "error" in r], ps
    single = train_all_ps(host.family)
    assert set(ps) == set(single)
    # slots live with their variables, and the variables are spread over both servers
    for name, got in ps.items():
        assert got["devices"], name
        for slot, device, owner in got["devices"]:
            assert "/job:ps/" in device and device == owner, (name, slot, device, owner)
        assert len({owner for _, _, owner in got["devices"]}) == 2, got["devices"]
    worst = {n: float(np.max(np.abs(np.asarray(ps[n]["weights"]) - single[n]["weights"]))) for n in single}
    print("parameter servers vs one device, max |difference| per case: %s" % worst)
    assert max(worst.values()) <= 1e-6, worst
    assert all(ps[n]["iterations"] == single[n]["iterations"] == EPOCHS * STEPS for n in single)
    host_vs_ours = float(np.max(np.abs(np.asarray(ps["host"]["weights"]) - ps["host-optcompat"]["weights"])))
    print("the host's own optimizer vs optcompat under the strategy: %.2g" % host_vs_ours)
    assert host_vs_ours <= 1e-6
    # the decay shows: applied twice per step it would differ
    doubled = train_all(host.family, decay_scale=2.0)
    assert min(float(np.max(np.abs(np.asarray(doubled[n]) - single[n]["weights"]))) for n in doubled) > 1e-4


@pytest.mark.dist
@pytest.mark.backends("tensorflow")
@pytest.mark.applies(lambda facts, params: not _supported(facts))
def test_parameter_server_fit_fails_with_the_hosts_own_optimizer_too(host, tmp_path):
    """Where the deviations table says the host cannot train under the strategy: its own AdamW
    raises there (else the entry is stale), and so does optcompat's in every case, with the same
    error type -- not a wrong result."""
    got = run_cluster(host.family, tmp_path)
    theirs = got.pop("host")
    assert "error" in theirs, "the host's own AdamW trains under ParameterServerStrategy now: " \
        "remove the deviations entry"
    print("under ParameterServerStrategy, the host's own AdamW: %s" % theirs["error"])
    kind = theirs["error"].split(":")[0]
    assert all("error" in ours and ours["error"].split(":")[0] == kind for ours in got.values()), got
