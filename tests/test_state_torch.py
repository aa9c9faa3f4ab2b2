"""optcompat.state with torch.optim: a run of torch's AdamW / SGD moved into Keras 3 (every
backend installed here) and back, a Keras run continued in torch, a torch.save file read
directly, and every refusal with nothing changed.

The references are torch's own straight runs (45 steps of the same gradients) and Keras's
(tests/foreign.py holds the parameters, the gradients and the Keras side).
"""
import copy
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import foreign
from foreign import STEPS
from foreign import TOL
from foreign import gradient
from foreign import initial
from support import corrupted_copy
from support import truncated_copy

torch = pytest.importorskip("torch", reason="torch is not installed: the torch.optim state tests need it")
state = pytest.importorskip("optcompat.state")
keras_spec = importlib.util.find_spec("keras")

BACKENDS = ("torch", "jax", "tensorflow")


def params():
    return [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in initial()]


def make(run, ps, **extra):
    if run == "adamw-amsgrad":
        return torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, amsgrad=True, **extra)
    if run == "adamw-groups":  # the biases in a group without decay: per-variable rates in the file
        return torch.optim.AdamW([{"params": ps[0::2]}, {"params": ps[1::2], "weight_decay": 0.0}], lr=0.01,
                                 eps=1e-8, weight_decay=0.05, **extra)
    if run == "adamw":
        return torch.optim.AdamW(ps, lr=0.01, eps=1e-8, weight_decay=0.05, **extra)
    if run == "adam":
        return torch.optim.Adam(ps, lr=0.01, eps=1e-8, **extra)
    if run == "sgd-nesterov":
        return torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, **extra)
    if run == "sgd-momentum":
        return torch.optim.SGD(ps, lr=0.05, momentum=0.8, **extra)
    raise KeyError(run)


def torch_steps(opt, ps, t0, n):
    for t in range(t0, t0 + n):
        for p, g in zip(ps, gradient([p.detach().numpy() for p in ps], t)):
            p.grad = torch.from_numpy(g).to(p.dtype)
        opt.step()


def values(ps):
    return [p.detach().numpy().copy() for p in ps]


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def keras_in_subprocess(backend, jobs, tmp_path):
    """tests/foreign.py's Keras stage for ``jobs`` in a fresh process on ``backend``."""
    path = tmp_path / ("jobs-%s.json" % backend)
    path.write_text(json.dumps(jobs))
    env = dict(os.environ, KERAS_BACKEND=backend)
    proc = subprocess.run([sys.executable, foreign.__file__, str(path)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def backend_missing(backend):
    if keras_spec is None:
        return "keras is not installed"
    if importlib.util.find_spec(backend) is None:
        return ("%s is not installed here: Keras 3's %s backend runs this leg where it is (keras3-torch has "
                "torch and jax; ci/matrix.py's chain state-chain-torch runs keras3-tf)" % (backend, backend))
    return None


RUNS = ("adamw-amsgrad", "sgd-nesterov", "sgd-momentum", "adamw-groups", "adam")
NO_STEP_COUNT = ("sgd-nesterov", "sgd-momentum")  # torch's SGD keeps none


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_torch_run_moves_through_keras_and_back(backend, tmp_path):
    """torch 15 steps -> optcompat on Keras 3 (``backend``) 15 steps -> torch 15 steps, equal to
    45 straight torch steps within 1e-5, for AdamW (amsgrad; param groups), Adam and SGD
    (momentum; Nesterov)."""
    missing = backend_missing(backend)
    if missing:
        pytest.skip(missing)
    jobs, firsts = [], {}
    for run in RUNS:
        ps = params()
        opt = make(run, ps)
        torch_steps(opt, ps, 0, STEPS)
        first = str(tmp_path / ("%s-torch.npz" % run))
        saved = state.save(opt, first, ps)
        assert saved.header["convention"] == "torch" and saved.iterations == (0 if run in NO_STEP_COUNT else STEPS)
        if run == "adamw-groups":
            assert [v["weight_decay"] for v in saved.variables] == [0.05, 0.0, 0.05, 0.0]
        firsts[run] = first
        jobs.append({"run": run, "in": first, "out": str(tmp_path / ("%s-keras.npz" % run)), "t0": STEPS,
                     "steps": STEPS, "convention": "torch", "iterations": saved.iterations})
    keras_in_subprocess(backend, jobs, tmp_path)
    for run in RUNS:
        straight = params()
        opt = make(run, straight)
        torch_steps(opt, straight, 0, 3 * STEPS)
        ps = [torch.nn.Parameter(torch.zeros(p.shape)) for p in straight]
        back = make(run, ps)
        loaded = state.load(back, str(tmp_path / ("%s-keras.npz" % run)), ps, restore_variables=True)
        # torch's SGD keeps no step count: its file says 0, and Keras counts from there
        assert loaded.iterations == (1 if run in NO_STEP_COUNT else 2) * STEPS
        assert loaded.header["family"] == "keras3"
        assert loaded.header["versions"]["keras"]
        torch_steps(back, ps, 2 * STEPS, STEPS)
        diff = max_diff(values(ps), values(straight))
        moved = max_diff(values(straight), initial())
        print("%s via Keras 3 on %s: max abs diff vs 45 straight torch steps %.3g (moved %.3g)"
              % (run, backend, diff, moved))
        assert moved > 100 * TOL
        assert diff < TOL, (run, backend, diff)
        if run not in NO_STEP_COUNT:  # torch's own step count, where torch keeps one
            assert {float(s["step"]) for s in back.state.values()} == {3.0 * STEPS}


@pytest.mark.skipif(keras_spec is None, reason="keras is not installed")
@pytest.mark.parametrize("run", ("adamw-amsgrad", "sgd-nesterov"))
def test_a_keras_run_continues_in_torch(run, tmp_path):
    """optcompat's AdamW / SGDW (convention="torch") on Keras 3, 15 steps, continued in torch for
    15: equal to Keras's own 30 straight steps."""
    here = os.environ.get("KERAS_BACKEND", "torch")
    jobs = [{"run": run, "in": None, "out": str(tmp_path / "keras.npz"), "t0": 0, "steps": STEPS,
             "convention": "torch"},
            {"run": run, "in": None, "out": None, "t0": 0, "steps": 2 * STEPS, "convention": "torch",
             "values": str(tmp_path / "straight.npz")}]
    keras_in_subprocess(here, jobs, tmp_path)
    with np.load(str(tmp_path / "straight.npz")) as npz:
        straight = [npz["arr_%d" % i] for i in range(len(npz.files))]
    ps = [torch.nn.Parameter(torch.zeros(v.shape)) for v in straight]
    opt = make(run, ps)
    state.load(opt, str(tmp_path / "keras.npz"), ps, restore_variables=True)
    torch_steps(opt, ps, STEPS, STEPS)
    diff = max_diff(values(ps), straight)
    print("%s: Keras 3 (%s) 15 steps + torch 15 vs Keras 30 straight: %.3g" % (run, here, diff))
    assert max_diff(straight, initial()) > 100 * TOL
    assert diff < TOL


def test_a_torch_save_file_is_read_directly(tmp_path):
    """torch.save(opt.state_dict()) reads as the state optcompat.state.save writes, and
    `python -m optcompat.state inspect / convert` read it."""
    ps = params()
    opt = make("adamw-amsgrad", ps)
    torch_steps(opt, ps, 0, 5)
    path = str(tmp_path / "opt.pt")
    torch.save(opt.state_dict(), path)
    direct, read = state.state_of(opt, ps), state.read(path)
    assert read.kind == "adam" and read.iterations == 5 and read.convention == "torch"
    assert read.header["slots"] == ["m", "v", "vhat"]
    for a, b in zip(direct.slots, read.slots):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    target = make("adamw-amsgrad", params())
    state.load(target, path, target.param_groups[0]["params"])
    for p, q in zip(ps, target.param_groups[0]["params"]):
        for k, v in opt.state[p].items():
            assert torch.equal(v, target.state[q][k]), k
    run = [sys.executable, "-m", "optcompat.state"]
    shown = subprocess.run(run + ["inspect", path], stdout=subprocess.PIPE, universal_newlines=True)
    assert shown.returncode == 0 and "torch.save of an optimizer state_dict" in shown.stdout
    assert "step:        5" in shown.stdout and "slots m, v, vhat" in shown.stdout
    out = str(tmp_path / "opt.npz")
    converted = subprocess.run(run + ["convert", path, out], stdout=subprocess.PIPE, universal_newlines=True)
    assert converted.returncode == 0 and state.read(out).iterations == 5


# (capturable needs a CUDA device: torch refuses it on the CPU)
IMPLEMENTATIONS = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}, "float64": {}}


@pytest.mark.parametrize("run", ("adamw-amsgrad", "sgd-momentum"))
@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_loading_writes_state_as_torch_keeps_it(run, impl, tmp_path):
    """Loaded into a fresh optimizer (torch's for-loop, foreach or fused kernels;
    float64 parameters): the state torch would hold after those steps (keys, dtypes,
    devices), and the next steps the same as the saved optimizer's."""
    extra = IMPLEMENTATIONS[impl]
    if impl == "fused" and run.startswith("sgd") and not hasattr(torch, "_fused_sgd_"):
        pytest.skip("this torch has no fused SGD")
    ps = params()
    if impl == "float64":
        ps = [torch.nn.Parameter(p.detach().double()) for p in ps]
    opt = make(run, ps, **extra)
    torch_steps(opt, ps, 0, 4)
    state.save(opt, str(tmp_path / "s.npz"), ps)
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    fresh = make(run, qs, **extra)
    state.load(fresh, str(tmp_path / "s.npz"), qs)
    for p, q in zip(ps, qs):
        assert sorted(opt.state[p]) == sorted(fresh.state[q])
        for k, v in opt.state[p].items():
            w = fresh.state[q][k]
            assert (v.dtype, v.device, v.shape) == (w.dtype, w.device, w.shape) and torch.equal(v, w), k
    torch_steps(opt, ps, 4, 3)
    torch_steps(fresh, qs, 4, 3)
    assert max_diff(values(ps), values(qs)) == 0.0


# -- refusals: nothing changes --------------------------------------------------------------
def snapshot(opt, ps):
    return copy.deepcopy(opt.state_dict()), values(ps)


def assert_unchanged(before, after):
    (sd0, v0), (sd1, v1) = before, after
    assert sd0["param_groups"] == sd1["param_groups"]
    assert sorted(sd0["state"]) == sorted(sd1["state"])
    for i in sd0["state"]:
        assert sorted(sd0["state"][i]) == sorted(sd1["state"][i])
        for k in sd0["state"][i]:
            assert torch.equal(torch.as_tensor(sd0["state"][i][k]), torch.as_tensor(sd1["state"][i][k])), (i, k)
    assert max_diff(v0, v1) == 0.0


def saved(tmp_path, run="adamw-amsgrad", steps=3):
    ps = params()
    opt = make(run, ps)
    torch_steps(opt, ps, 0, steps)
    path = str(tmp_path / ("%s.npz" % run))
    state.save(opt, path, ps)
    return path


def _rewrite(path, out, edit):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(bytes(arrays.pop("header")).decode())
    edit(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(out, **arrays)
    return out



def _other_shapes():
    ps = [torch.nn.Parameter(torch.zeros(s)) for s in ((4, 2), (2,), (3, 2), (2,))]
    return ps, make("adamw-amsgrad", ps)


BAD = {
    # what is wrong -> (file from the saved one, (params, optimizer) to load into, error)
    "other-kind": (lambda p, t: saved(t, "sgd-nesterov"), lambda: _fresh("adamw-amsgrad"), "SGD-kind"),
    "other-slots": (lambda p, t: p, lambda: _fresh("adamw"), "amsgrad differs"),
    "other-convention": (lambda p, t: _rewrite(p, str(t / "keras.npz"), lambda h: h.update(convention="keras")),
                         lambda: _fresh("adamw-amsgrad"), "convention 'keras', but the optimizer uses 'torch'"),
    "fewer-params": (lambda p, t: p, lambda: _fresh("adamw-amsgrad", drop_last=True), "4 variables, but 3"),
    "other-shapes": (lambda p, t: p, _other_shapes, r"\(4, 3\) float32 in the file"),
    "other-dtype": (lambda p, t: p, lambda: _fresh("adamw-amsgrad", dtype=torch.float64), "float64 here"),
    "truncated": (lambda p, t: truncated_copy(p, str(t / "cut.npz")), lambda: _fresh("adamw-amsgrad"),
                  "truncated or corrupted"),
    "newer-format": (lambda p, t: _rewrite(p, str(t / "new.npz"), lambda h: h.update(format_version=99)),
                     lambda: _fresh("adamw-amsgrad"), "version 99, newer than"),
    "not-its-params": (lambda p, t: p, lambda: _fresh("adamw-amsgrad", foreign_params=True),
                       "is not one of AdamW's parameters"),
    "corrupted": (lambda p, t: corrupted_copy(p, str(t / "flipped.npz")), lambda: _fresh("adamw-amsgrad"),
                  "corrupted"),
    "other-decayed": (lambda p, t: saved(t, "adamw-groups"), lambda: _fresh("adamw"),
                      r"decays variables \[0, 2\] and not \[1, 3\]"),
    "torch-file-corrupted": (lambda p, t: _torch_file(t, corrupt=True), lambda: _fresh("adamw-amsgrad"),
                             "cannot be read as a torch.save file"),
    "torch-file-not-a-state-dict": (lambda p, t: _torch_file(t, other=True), lambda: _fresh("adamw-amsgrad"),
                                    "holds no optimizer state_dict"),
}



def _torch_file(tmp_path, corrupt=False, other=False):
    ps = params()
    opt = make("adamw-amsgrad", ps)
    torch_steps(opt, ps, 0, 2)
    path = str(tmp_path / "opt.pt")
    torch.save({"weights": ps[0].detach()} if other else opt.state_dict(), path)
    if corrupt:
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    return path


def _fresh(run, drop_last=False, dtype=None, foreign_params=False):
    ps = params()
    if dtype is not None:
        ps = [torch.nn.Parameter(p.detach().to(dtype)) for p in ps]
    opt = make(run, ps)
    torch_steps_any(opt, ps)
    if foreign_params:
        ps = params()
    return (ps[:-1] if drop_last else ps), opt


def torch_steps_any(opt, ps):
    for t in range(2):  # a few steps of its own: its state must survive a refusal
        for p in ps:
            p.grad = torch.full_like(p, 0.1 * (t + 1))
        opt.step()


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_refused_load_changes_nothing(bad, tmp_path):
    make_file, make_target, match = BAD[bad]
    path = make_file(saved(tmp_path), tmp_path)
    ps, opt = make_target()
    mine = [p for g in opt.param_groups for p in g["params"]]
    before = snapshot(opt, mine)
    with pytest.raises(state.StateError, match=match):
        state.load(opt, path, ps, restore_variables=True)
    assert_unchanged(before, snapshot(opt, mine))


@pytest.mark.skipif(keras_spec is None, reason="keras is not installed")
def test_a_keras_optimizer_that_decays_other_variables_is_refused(tmp_path):
    """torch's groups (biases at weight_decay 0) into optcompat's AdamW on Keras 3 without
    exclude_from_weight_decay: refused, the optimizer not built; with it, loaded."""
    import keras

    import optcompat

    path = saved(tmp_path, "adamw-groups")
    variables = [keras.Variable(v, name=n) for v, n in zip(initial(), foreign.NAMES)]
    opt = optcompat.AdamW(learning_rate=0.01, weight_decay=0.05, epsilon=1e-8, convention="torch")
    with pytest.raises(state.StateError, match=r"decays variables \[0, 2\] and not \[1, 3\]"):
        state.load(opt, path, variables)
    assert not opt.built and int(keras.ops.convert_to_numpy(opt.iterations)) == 0
    good = optcompat.AdamW(learning_rate=0.01, weight_decay=0.05, epsilon=1e-8, convention="torch",
                           exclude_from_weight_decay=["bias"])
    assert state.load(good, path, variables).iterations == 3


def test_another_convention_loads_when_asked(tmp_path):
    path = _rewrite(saved(tmp_path), str(tmp_path / "keras.npz"), lambda h: h.update(convention="keras"))
    ps, opt = _fresh("adamw-amsgrad")
    assert state.load(opt, path, ps, allow_convention_change=True).iterations == 3
    assert {float(s["step"]) for s in opt.state.values()} == {3.0}


UNSAVABLE = {
    "adam-coupled-decay": (lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1), "coupled decay"),
    "sgd-coupled-decay": (lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.1), "coupled"),
    "sgd-dampening": (lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, dampening=0.1), "dampening"),
    "maximize": (lambda ps: torch.optim.AdamW(ps, lr=0.01, maximize=True), "maximize"),
    "group-learning-rates": (lambda ps: torch.optim.AdamW([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1}],
                                                          lr=0.01), "different learning rates"),
    "other-optimizer": (lambda ps: torch.optim.RMSprop(ps, lr=0.01), "reads torch.optim.AdamW, Adam and SGD"),
}


@pytest.mark.parametrize("bad", sorted(UNSAVABLE))
def test_an_optimizer_a_keras_optimizer_cannot_express_is_refused(bad, tmp_path):
    ps = params()
    make_opt, match = UNSAVABLE[bad]
    opt = make_opt(ps)
    torch_steps_any(opt, ps)
    before = snapshot(opt, ps)
    path = tmp_path / "refused.npz"
    with pytest.raises(state.StateError, match=match):
        state.save(opt, str(path), ps)
    assert not path.exists()
    good = saved(tmp_path)
    with pytest.raises(state.StateError, match=match):
        state.load(opt, good, ps)
    assert_unchanged(before, snapshot(opt, ps))


def test_an_adam_without_decay_saves_and_variables_must_be_tensors(tmp_path):
    ps = params()
    opt = torch.optim.Adam(ps, lr=0.01)
    torch_steps(opt, ps, 0, 2)
    assert state.save(opt, str(tmp_path / "adam.npz"), ps).kind == "adam"
    with pytest.raises(TypeError, match="`variables` must be the optimizer's parameters"):
        state.save(opt, str(tmp_path / "x.npz"), [p.detach().numpy() for p in ps])


def test_torch_save_files_of_sgd_and_of_an_unstepped_adamw(tmp_path):
    ps = params()
    opt = make("sgd-momentum", ps)
    torch_steps(opt, ps, 0, 3)
    torch.save(opt.state_dict(), str(tmp_path / "sgd.pt"))
    read = state.read(str(tmp_path / "sgd.pt"))
    assert read.kind == "sgd" and read.header["slots"] == ["momentum"] and read.iterations == 0
    np.testing.assert_array_equal(read.slots[0]["momentum"], opt.state[ps[0]]["momentum_buffer"].numpy())
    unstepped = make("adamw", params())
    torch.save(unstepped.state_dict(), str(tmp_path / "adamw.pt"))
    with pytest.raises(state.StateError, match="has not taken a step keeps none"):
        state.read(str(tmp_path / "adamw.pt"))
