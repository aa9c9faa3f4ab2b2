"""Keras 3 on torch, data-parallel over two real processes the way Keras's guide for PyTorch does
it: ``torch.distributed`` (gloo, a TCP rendezvous on 127.0.0.1 at a free port, bounded in time,
both processes killed on every exit path) and ``DistributedDataParallel`` around the Keras model,
a training loop that backpropagates the local half of each global batch (DDP averages the
gradients) and hands them to optcompat's ``optimizer.apply``.  Keras 3's ``model.fit`` has no
multi-process distribution on torch.  The two processes end equal to one process on the same
global batches -- the decay applied once per step, not once per process -- for AdamW (amsgrad, a
schedule, an exclusion) and SGDW with momentum, in every convention, on the fused, foreach and
per-variable paths.  Collected in the envs of tox's label ``dist`` only (marker ``dist``)."""
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
FAST_PATHS = ("auto", "foreach", None)

PROCESS = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, %(tests)r)
    rank, port, result = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    import torch
    if rank >= 0:
        torch.distributed.init_process_group("gloo", init_method="tcp://127.0.0.1:%%s" %% port, rank=rank,
                                             world_size=2)
    import test_torch_processes as case

    try:
        out = case.train_all(rank if rank >= 0 else None)
    finally:
        if rank >= 0:
            torch.distributed.destroy_process_group()
    if rank <= 0:
        with open(result, "w") as f:
            json.dump(out, f)
""")


def train_all(rank=None):
    """Every case x fast path: the weights after EPOCHS passes over the global batches of
    GLOBAL_BATCH rows, in one process (``rank`` None) or as rank 0 / 1 of two, each under DDP
    backpropagating rows [b G + r G/2, b G + (r+1) G/2) of global batch b."""
    import torch

    from support import data
    from support import make_host

    host = make_host("keras3")
    x, y = (torch.tensor(a) for a in data(64))
    width = GLOBAL_BATCH if rank is None else GLOBAL_BATCH // 2
    offset = 0 if rank is None else rank * width
    out = {}
    for name, (cls, kwargs) in sorted(cases().items()):
        for fast_path in FAST_PATHS:
            kw = dict(kwargs, fast_path=fast_path)
            if isinstance(kw["learning_rate"], tuple):
                kw["learning_rate"] = host.exponential_decay(*kw["learning_rate"][1:])
            model = host.dense_model()
            opt = host.make(cls, **kw)
            net = model if rank is None else torch.nn.parallel.DistributedDataParallel(model)
            for _ in range(EPOCHS):
                for b in range(len(x) // GLOBAL_BATCH):
                    rows = slice(b * GLOBAL_BATCH + offset, b * GLOBAL_BATCH + offset + width)
                    loss = torch.mean((net(x[rows]) - y[rows]) ** 2)  # the local mean: DDP averages
                    loss.backward()
                    variables = model.trainable_variables
                    opt.apply([v.value.grad for v in variables], variables)
                    model.zero_grad()
            out["%s/%s" % (name, fast_path)] = np.concatenate([w.ravel() for w in model.get_weights()]).tolist()
    return out


def run(tmp_path, two):
    """The weights of every case, from two processes (``two``) or one."""
    return one_or_two(tmp_path, PROCESS % {"tests": TESTS}, two, TIMEOUT, KERAS_BACKEND="torch")


@pytest.mark.dist
@pytest.mark.backends("torch")
def test_ddp_over_two_processes_equals_one_process(host, tmp_path):
    one, two = run(tmp_path / "one", False), run(tmp_path / "two", True)
    assert sorted(one) == sorted(two) and len(one) == len(cases()) * len(FAST_PATHS)
    x0 = np.concatenate([w.ravel() for w in host.dense_model().get_weights()])
    worst = 0.0
    for name in sorted(one):
        assert np.max(np.abs(one[name] - x0)) > 1e-3, name  # it trained
        error = float(np.max(np.abs(two[name] - one[name])))
        assert error <= 1e-6, (name, error)
        worst = max(worst, error)
    print("DDP over 2 processes = 1 process within %.2g over %d cases" % (worst, len(one)))
