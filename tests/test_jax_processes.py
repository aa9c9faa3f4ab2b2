"""Keras 3 on JAX, data-parallel over two real processes (``keras.distribution.initialize``: a
coordinator on 127.0.0.1 at a free port, gloo collectives on the CPU, bounded in time, both
processes killed on every exit path): model.fit with ``DataParallel`` over the two processes'
devices, each process feeding its half of every global batch, equals one process on the same
global batches -- the decay applied once per step, not once per process -- for AdamW (amsgrad,
a schedule, an exclusion) and SGDW with momentum, in every convention.
Collected in the envs of tox's label ``dist`` only (marker ``dist``: OPTCOMPAT_ENV_DIST=1)."""
import os
import textwrap

import numpy as np
import pytest

from processes import one_or_two
from test_multiworker import EPOCHS
from test_multiworker import GLOBAL_BATCH
from test_multiworker import cases

TESTS = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 170  # seconds for the two processes together (the case under 3 minutes)

PROCESS = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, %(tests)r)
    index, port, result = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    import jax
    try:  # CPU collectives across processes (jax >= 0.4.27 has gloo)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except AttributeError:
        pass
    import keras
    if index >= 0:
        keras.distribution.initialize(job_addresses="127.0.0.1:%%s" %% port, num_processes=2, process_id=index)
        assert jax.process_count() == 2 and len(jax.devices()) == 2, jax.devices()
    import test_jax_processes as case

    out = case.train_all(index if index >= 0 else None)
    if index <= 0:
        with open(result, "w") as f:
            json.dump(out, f)
""")


def train_all(process=None):
    """Every case's weights after ``model.fit`` on the global batches of GLOBAL_BATCH rows, no
    shuffling: in one process (``process`` None), or as process 0 / 1 of two under
    ``DataParallel``, feeding rows [b G + p G/2, b G + (p+1) G/2) of each global batch b."""
    import keras

    from support import data
    from support import make_host

    host = make_host("keras3")
    x, y = data(64)
    batch, rows = GLOBAL_BATCH, np.arange(len(x))
    if process is not None:
        import jax

        keras.distribution.set_distribution(keras.distribution.DataParallel(
            devices=jax.devices(), auto_shard_dataset=False))
        batch = GLOBAL_BATCH // 2
        rows = np.concatenate([np.arange(b * GLOBAL_BATCH + process * batch, b * GLOBAL_BATCH + (process + 1) * batch)
                               for b in range(len(x) // GLOBAL_BATCH)])
    out = {}
    for name, (cls, kwargs) in sorted(cases().items()):
        kw = dict(kwargs)
        if isinstance(kw["learning_rate"], tuple):
            kw["learning_rate"] = host.exponential_decay(*kw["learning_rate"][1:])
        model = host.dense_model()
        model.compile(optimizer=host.make(cls, **kw), loss="mean_squared_error")
        model.fit(x[rows], y[rows], batch_size=batch, epochs=EPOCHS, shuffle=False, verbose=0)
        out[name] = np.concatenate([np.asarray(w).ravel() for w in model.get_weights()]).tolist()
    return out


def run(tmp_path, two):
    """The weights of every case, from two processes (``two``) or one (one CPU device each: no
    XLA_FLAGS asking for more)."""
    return one_or_two(tmp_path, PROCESS % {"tests": TESTS}, two, TIMEOUT, KERAS_BACKEND="jax", XLA_FLAGS="")


@pytest.mark.dist
@pytest.mark.backends("jax")
def test_data_parallel_over_two_processes_equals_one_process(host, tmp_path):
    one, two = run(tmp_path / "one", False), run(tmp_path / "two", True)
    assert sorted(one) == sorted(two) == sorted(cases())
    x0 = np.concatenate([np.asarray(w).ravel() for w in host.dense_model().get_weights()])
    for name in sorted(one):
        assert np.max(np.abs(one[name] - x0)) > 1e-3, name  # it trained
        assert np.max(np.abs(two[name] - one[name])) <= 1e-6, (name, float(np.max(np.abs(two[name] - one[name]))))
    print("DataParallel over 2 processes = 1 process within %.2g over %d cases" % (
        max(float(np.max(np.abs(two[n] - one[n]))) for n in one), len(one)))
