"""optcompat.state: a training run's optimizer state in a portable file, into any optimizer
of the same kind, in any family -- and every bad file refused before anything changes.

A run trained 2 epochs is saved with ``state.save``; a new model (other initial weights,
then the saved weights set) with a new optimizer loads it with ``state.load`` and trains 2
more: it must end within 1e-6 of 4 straight epochs of the first optimizer, with the step
count carried over.  Both directions between the host's own optimizers and optcompat's
(test_host_interop's cases), between families where the env has several, from TensorFlow
Addons and keras-adamw where they install.  Each bad input leaves the optimizer, its slots
and the model exactly as they were."""
import json
import subprocess
import sys

import numpy as np
import pytest

from support import ENV
from support import applies
from support import corrupted_copy
from support import flat
from support import has_builtin
from support import make_host
from support import tensorflow_addons
from support import truncated_copy
from test_host_interop import CASES
from test_host_interop import compiled
from test_host_interop import hosts_own_is_an_oracle
from test_host_interop import train

state = pytest.importorskip("optcompat.state")


def needs_builtin(facts, params):
    name = CASES[params["case"]][2]
    if params.get("direction") == "optcompat-to-optcompat" or params.get("writer") == "optcompat":
        return name is None or has_builtin(facts, name)  # the host's own only builds the case
    return hosts_own_is_an_oracle(facts, params)


def weights(model):
    return [np.array(w) for w in model.get_weights()]


def resumed(host, first, second, case, tmp_path, via=None, fmt="npz"):
    """4 straight epochs of ``first``; 2 of ``first``, saved, loaded into ``second`` (same
    hyperparameters) in a fresh model given the saved weights, 2 more.  ``via``: the host of
    the second half (another family), default ``host``; ``fmt``: optcompat.state's file, or
    the first half's own TF checkpoint, read directly."""
    via = via or host
    straight = compiled(host, first, case)
    train(straight, 4)
    before = compiled(host, first, case)
    train(before, 2)
    path = str(tmp_path / ("run.npz" if fmt == "npz" else "ckpt"))
    if fmt == "npz":
        state.save(before.optimizer, path, before.trainable_variables)
    else:
        host.tf.train.Checkpoint(model=before, optimizer=before.optimizer).write(path)
    after = compiled(via, second, case, seed=1)
    after.set_weights(weights(before))
    loaded = state.load(after.optimizer, path, after.trainable_variables)
    assert loaded.iterations == 8
    train(after, 2)
    return straight, after


@applies(needs_builtin)
@pytest.mark.parametrize("direction", ["host-to-optcompat", "optcompat-to-host", "optcompat-to-optcompat"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_run_moves_through_a_state_file(host, case, direction, tmp_path):
    first, second = {"host-to-optcompat": ("host", "optcompat"), "optcompat-to-host": ("optcompat", "host"),
                     "optcompat-to-optcompat": ("optcompat", "optcompat")}[direction]
    straight, after = resumed(host, first, second, case, tmp_path)
    assert host.iterations(after.optimizer) == 16
    assert np.max(np.abs(flat(after) - flat(straight))) < 1e-6


def other_families(facts, params):
    others = [f for f in ENV.families if f != facts.family]
    return bool(others) and (params["fmt"] == "npz" or facts.backend == "tensorflow")


@applies(other_families)
@pytest.mark.parametrize("fmt", ["npz", "checkpoint"])
@pytest.mark.parametrize("case", ["adamw", "adam-amsgrad", "sgd-momentum-decay", "sgd-momentum"])
def test_a_run_moves_to_another_family(host, case, fmt, tmp_path):
    """optcompat's optimizer of this family -> optcompat's of every other family the env has
    (TF 2.11-2.15: legacy <-> keras2; tf-keras: keras3, keras2, legacy), through the state
    file or this family's own TF checkpoint (TF 2.11+ refuses an OptimizerV2 checkpoint in its
    new optimizers: optcompat.state reads it)."""
    for family in [f for f in ENV.families if f != host.family]:
        other = make_host(family)
        straight, after = resumed(host, "optcompat", "optcompat", case, tmp_path, via=other, fmt=fmt)
        assert other.iterations(after.optimizer) == 16
        assert np.max(np.abs(flat(after) - flat(straight))) < 1e-6, family


def test_the_header_says_what_the_file_holds(host, tmp_path):
    model = compiled(host, "optcompat", "adamw")
    model.optimizer.weight_decay = 0.01
    train(model, 1)
    path = str(tmp_path / "s.npz")
    state.save(model.optimizer, path, model.trainable_variables)
    s = state.read(path)
    h = s.header
    assert (h["kind"], h["family"], h["convention"], h["iterations"], h["slots"]) == \
        ("adam", host.family, "keras", 4, ["m", "v"])
    assert h["format"] == "optcompat.state" and h["format_version"] == state.FORMAT_VERSION
    # the values given, not a float32 variable's rounding of them
    assert (h["hyperparameters"]["learning_rate"], h["hyperparameters"]["weight_decay"]) == (0.01, 0.01)
    assert [tuple(v["shape"]) for v in h["variables"]] == [tuple(w.shape) for w in model.trainable_variables]
    assert all(v["dtype"] == "float32" for v in h["variables"])
    opt = model.optimizer
    m0 = host.value(opt.get_slot(model.trainable_variables[0], "m")) if host.family == "legacy" \
        else host.value(opt._momentums[0])
    np.testing.assert_array_equal(s.slots[0]["m"], m0)
    assert np.any(s.slots[0]["m"] != 0)


def test_an_unused_optimizer_saves_zeros(host, tmp_path):
    model = compiled(host, "optcompat", "adamw")
    path = str(tmp_path / "s.npz")
    s = state.save(model.optimizer, path, model.trainable_variables)
    assert s.iterations == 0 and all(not np.any(a) for slots in s.slots for a in slots.values())


# -- peers ---------------------------------------------------------------------------------
def a_peer_run_continues(host, theirs, ours, tmp_path):
    """2 epochs with the peer's optimizer (``theirs()`` makes one), saved with
    ``state.save``; ``ours`` loads it in a fresh model given the saved weights and trains 2
    more: within 1e-6 of 4 epochs of the peer's.  Returns the saved :class:`State`."""
    def compiled_with(make, seed=0):
        model = host.dense_model(seed=seed)
        model.compile(optimizer=make(), loss="mse")
        return model

    straight, before = compiled_with(theirs), compiled_with(theirs)
    train(straight, 4)
    train(before, 2)
    path = str(tmp_path / "peer.npz")
    saved = state.save(before.optimizer, path, before.trainable_variables)
    after = compiled_with(lambda: ours, seed=1)
    after.set_weights(weights(before))
    state.load(after.optimizer, path, after.trainable_variables)
    train(after, 2)
    assert np.max(np.abs(flat(after) - flat(straight))) < 1e-6
    return saved


@pytest.mark.families("legacy")
@pytest.mark.installed("tensorflow_addons")
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_a_tensorflow_addons_run_continues_in_optcompat(host, name, tmp_path):
    tfa = tensorflow_addons(host)
    kw = dict(learning_rate=0.01, weight_decay=1e-3) if name == "AdamW" else \
        dict(learning_rate=0.05, momentum=0.9, weight_decay=1e-3)
    s = a_peer_run_continues(host, lambda: getattr(tfa.optimizers, name)(**kw),
                             host.make(name, convention="tfa", **kw), tmp_path)
    assert (s.convention, s.kind, s.iterations) == ("tfa", "adam" if name == "AdamW" else "sgd", 8)


@pytest.mark.families("legacy")
@pytest.mark.installed("keras_adamw")
@pytest.mark.parametrize("name", ["AdamW", "SGDW"])
def test_a_keras_adamw_run_continues_in_optcompat(host, name, tmp_path):
    from test_tf_specifics import _keras_adamw

    ka = _keras_adamw(host)
    kw = dict(learning_rate=0.01) if name == "AdamW" else dict(learning_rate=0.05, momentum=0.9, nesterov=True)
    s = a_peer_run_continues(host, lambda: getattr(ka, name)(init_verbose=False, **kw),
                             host.make(name, weight_decay=0.0, convention="keras-adamw", **kw), tmp_path)
    assert (s.convention, s.kind, s.iterations) == ("keras-adamw", "adam" if name == "AdamW" else "sgd", 8)


# -- bad input: refused, nothing changed -----------------------------------------------------
def snapshot(host, model):
    opt = model.optimizer
    return [np.array(w) for w in model.get_weights()] + [np.array(host.iterations(opt))] + host.slots(opt)


def assert_unchanged(before, after):
    assert len(before) == len(after)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)


def saved_run(host, tmp_path, name="run.npz", case="adamw"):
    model = compiled(host, "optcompat", case)
    train(model, 1)
    path = str(tmp_path / name)
    state.save(model.optimizer, path, model.trainable_variables)
    return model, path


def a_target(host, case="adamw", **kw):
    """A model trained a little (its optimizer built, slots non-zero) to load into."""
    model = compiled(host, "optcompat", case, seed=2)
    if kw:
        name, kwargs = _name_kwargs(case, kw)
        model.compile(optimizer=host.make(name, **kwargs), loss="mse")
    train(model, 1)
    return model


def _name_kwargs(case, extra):
    (_, _), (name, kwargs), _ = CASES[case]
    return name, dict(kwargs, **extra)


def _rewrite(path, out, edit_header=None, drop=None):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(bytes(arrays.pop("header")).decode())
    if edit_header:
        edit_header(header)
    for k in drop or ():
        arrays.pop(k)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(out, **arrays)
    return out


def _bigger_model(host):
    k = host.keras
    model = k.Sequential([k.Input((4,)), k.layers.Dense(8, activation="tanh"), k.layers.Dense(2)])
    model.compile(optimizer=host.make("AdamW", learning_rate=0.01, weight_decay=0.05), loss="mse")
    return model


BAD = {
    # what is wrong -> (make the target model, the file to load, match)
    "fewer-variables": (lambda h, p, t: (a_target(h), p, lambda m: m.trainable_variables[:-1]),
                        "holds state for 4 variables, but 3 were given"),
    "extra-variable": (lambda h, p, t: (a_target(h), p, lambda m: m.trainable_variables + m.trainable_variables[:1]),
                       "holds state for 4 variables, but 5 were given"),
    "other-shapes": (lambda h, p, t: (_trained(_bigger_model(h), h), p, None), "in the file, but"),
    "other-order": (lambda h, p, t: (a_target(h), p, lambda m: list(reversed(m.trainable_variables))),
                    "in the file, but"),
    "other-kind": (lambda h, p, t: (a_target(h, "sgd-momentum"), p, None), "SGD-kind"),
    "other-slots": (lambda h, p, t: (a_target(h, "adamw", amsgrad=True), p, None), "amsgrad differs"),
    "other-convention": (lambda h, p, t: (a_target(h, "adamw", convention="torch"), p, None),
                         "convention 'keras', but the optimizer uses 'torch'.*epsilon"),
    "truncated": (lambda h, p, t: (a_target(h), truncated_copy(p, str(t / "truncated.npz")), None),
                  "truncated or corrupted"),
    "corrupted": (lambda h, p, t: (a_target(h), corrupted_copy(p, str(t / "corrupted.npz")), None), "corrupted"),
    "newer-format": (lambda h, p, t: (a_target(h), _rewrite(p, str(t / "new.npz"),
                                                            lambda hd: hd.update(format_version=99)), None),
                     "version 99, newer than"),
    "missing-array": (lambda h, p, t: (a_target(h), _rewrite(p, str(t / "miss.npz"), drop=["1/v"]), None),
                      "corrupted"),
    "not-a-state-file": (lambda h, p, t: (a_target(h), _text_file(t), None), "not an optcompat state file|no reader"),
}


def _trained(model, host):
    train_x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(train_x, np.zeros((32, 2), np.float32), batch_size=16, epochs=1, verbose=0)
    return model



def _text_file(tmp_path):
    out = str(tmp_path / "notes.txt")
    open(out, "w").write("not a state file\n")
    return out


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_bad_file_is_refused_and_nothing_changes(host, bad, tmp_path):
    _, path = saved_run(host, tmp_path)
    make_target, match = BAD[bad]
    model, path, pick = make_target(host, path, tmp_path)
    variables = (pick or (lambda m: m.trainable_variables))(model)
    before = snapshot(host, model)
    with pytest.raises(state.StateError, match=match):
        state.load(model.optimizer, path, variables)
    assert_unchanged(before, snapshot(host, model))


def test_a_refused_load_leaves_an_unbuilt_optimizer_unbuilt(host, tmp_path):
    _, path = saved_run(host, tmp_path)
    model = compiled(host, "optcompat", "sgd-momentum", seed=2)
    with pytest.raises(state.StateError):
        state.load(model.optimizer, path, model.trainable_variables)
    assert host.slots(model.optimizer) == [] or all(s.size <= 1 for s in host.slots(model.optimizer))
    assert host.iterations(model.optimizer) == 0


def test_another_convention_loads_when_asked_explicitly(host, tmp_path):
    source, path = saved_run(host, tmp_path)
    model = a_target(host, "adamw", convention="torch")
    s = state.load(model.optimizer, path, model.trainable_variables, allow_convention_change=True)
    assert host.iterations(model.optimizer) == s.iterations == 4
    assert model.optimizer.convention == "torch"


def test_restore_variables_sets_the_model_too(host, tmp_path):
    source, path = saved_run(host, tmp_path)
    model = a_target(host)
    state.load(model.optimizer, path, model.trainable_variables, restore_variables=True)
    np.testing.assert_array_equal(flat(model), flat(source))


# -- the command line --------------------------------------------------------------------------
def test_inspect_and_convert_on_the_command_line(host, tmp_path):
    _, path = saved_run(host, tmp_path, case="sgd-momentum")
    run = [sys.executable, "-m", "optcompat.state"]
    out = subprocess.run(run + ["inspect", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for expected in ("optcompat.%s.SGDW (kind sgd)" % host.family, "family:      %s" % host.family,
                     "convention:  keras", "step:        4", "slots momentum"):
        assert expected in out.stdout
    copy = str(tmp_path / "copy.npz")
    out = subprocess.run(run + ["convert", path, copy], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=120)
    assert out.returncode == 0, out.stderr
    a, b = state.read(path), state.read(copy)
    assert a.header["iterations"] == b.header["iterations"] and a.variables == b.variables
    for x, y in zip(a.slots, b.slots):
        np.testing.assert_array_equal(x["momentum"], y["momentum"])
    cut = truncated_copy(path, str(tmp_path / "truncated.npz"))
    bad = subprocess.run(run + ["inspect", cut], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert bad.returncode == 2 and "truncated or corrupted" in bad.stderr


# -- TF checkpoints, read directly ----------------------------------------------------------
def tf_checkpoints(facts, params):
    return facts.backend == "tensorflow" and needs_builtin(facts, params)


@applies(tf_checkpoints)
@pytest.mark.parametrize("writer", ["host", "optcompat"])
@pytest.mark.parametrize("case", ["adamw", "adam-amsgrad", "sgd-momentum", "sgd-schedule"])
def test_a_tf_checkpoint_is_read_directly(host, case, writer, tmp_path):
    """A TF checkpoint written by the host's own optimizer or optcompat's, with
    ``tf.train.Checkpoint(model=..., optimizer=...)``: ``state.load`` reads it into a new
    optcompat optimizer (slots tied to their variables through the checkpoint's object graph),
    and the run continues as the straight one; ``inspect`` shows it."""
    straight = compiled(host, writer, case)
    train(straight, 4)
    before = compiled(host, writer, case)
    train(before, 2)
    base = str(tmp_path / "ckpt")
    host.tf.train.Checkpoint(model=before, optimizer=before.optimizer).write(base)
    after = compiled(host, "optcompat", case, seed=1)
    slotless = case == "sgd-schedule"  # SGD without momentum: the step count is all its state
    if slotless:
        after.set_weights(weights(before))
    s = state.load(after.optimizer, base, after.trainable_variables, restore_variables=not slotless)
    assert s.iterations == 8 and s.convention is None
    np.testing.assert_array_equal(flat(after), flat(before))
    train(after, 2)
    assert host.iterations(after.optimizer) == 16
    assert np.max(np.abs(flat(after) - flat(straight))) < 1e-6
    out = subprocess.run([sys.executable, "-m", "optcompat.state", "inspect", base], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert out.returncode == 0, out.stderr
    family = [line for line in out.stdout.splitlines() if line.startswith("family:")][0]
    assert "step:        8" in out.stdout and host.family in family, out.stdout
    assert slotless or "kernel" in out.stdout


@pytest.mark.families("legacy", "keras2")
def test_a_tf_format_weights_file_is_read_directly(host, tmp_path):
    """``model.save_weights("ckpt")`` (TF format) keeps the optimizer too: readable as a checkpoint."""
    straight = compiled(host, "host", "adam-amsgrad")
    train(straight, 4)
    before = compiled(host, "host", "adam-amsgrad")
    train(before, 2)
    base = str(tmp_path / "weights")
    before.save_weights(base, save_format="tf")
    after = compiled(host, "optcompat", "adam-amsgrad", seed=1)
    state.load(after.optimizer, base, after.trainable_variables, restore_variables=True)
    train(after, 2)
    assert np.max(np.abs(flat(after) - flat(straight))) < 1e-6


# -- files that list the state by position, read directly -----------------------------------
POSITIONAL = {"keras3": ("keras", "weights.h5", "h5"), "keras2": ("keras", "h5"), "legacy": ("h5",)}


def positional(facts, params):
    fmt = params["fmt"]
    if fmt not in POSITIONAL[facts.family] or not needs_builtin(facts, params):
        return False
    if fmt == "keras" and "keras" not in facts.formats:
        return False
    # TF 2.9/2.10's experimental (keras2) optimizers keep no slots in .h5 (the deviations table)
    return not (fmt == "h5" and facts.family == "keras2" and facts.at(tensorflow="<2.11"))


@applies(positional)
@pytest.mark.parametrize("writer", ["host", "optcompat"])
@pytest.mark.parametrize("case", ["adamw", "adam-amsgrad", "sgd-momentum-decay", "sgd-schedule"])
@pytest.mark.parametrize("fmt", ["keras", "weights.h5", "h5"])
def test_a_positional_file_is_read_directly(host, fmt, case, writer, tmp_path):
    """A ``.keras`` / ``.h5`` / ``.weights.h5`` written by the host's own optimizer or
    optcompat's: ``state.load`` reads its optimizer list in the writing family's order into a
    new optcompat optimizer, and the run continues as the straight one."""
    straight = compiled(host, writer, case)
    train(straight, 4)
    before = compiled(host, writer, case)
    train(before, 2)
    path = str(tmp_path / ("saved." + fmt))
    if fmt == "weights.h5":
        before.save_weights(path)
    else:
        before.save(path)
    after = compiled(host, "optcompat", case, seed=1)
    after.set_weights(weights(before))
    s = state.load(after.optimizer, path, after.trainable_variables)
    assert s.iterations == 8
    train(after, 2)
    assert host.iterations(after.optimizer) == 16
    assert np.max(np.abs(flat(after) - flat(straight))) < 1e-6
