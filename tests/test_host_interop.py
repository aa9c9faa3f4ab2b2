"""A training run moves between the host's own optimizer and optcompat's, both ways.

A model trained 2 epochs with the host's own AdamW / Adam / SGD is saved; the same model,
compiled with optcompat's AdamW / SGDW (the same hyperparameters, ``convention="keras"``),
restores the file and trains 2 epochs more: it must end where 4 epochs of the host's
optimizer end (1e-6), with the step count carried over -- and the reverse.  That holds only
where optcompat keeps the host's layout: the same optimizer variables in the same order
(files list them by position) under the same attribute names (TF checkpoints).  Every
format the family restores optimizer state from is tried: Keras 3 ``.weights.h5``,
``.keras`` and (tensorflow) TF checkpoints; Keras 2 TF checkpoints, TF-format weights and
``.keras``; OptimizerV2 TF checkpoints and TF-format weights.  optcompat runs its plain path
(``fast_path=None``), the op-by-op rule the host's own optimizer also runs.
"""
import numpy as np
import pytest

from deviations import Drift
from deviations import match
from support import applies
from support import data
from support import flat
from support import has_builtin

SCHEDULE = ("exponential", 0.1, 4, 0.5)  # built in the host by make()

# case -> (the host's class, its arguments; optcompat's class, its arguments), and the host
# class's name for support.has_builtin (None: every host has it)
CASES = {
    "adamw": (("AdamW", dict(learning_rate=0.01, weight_decay=0.05)),
              ("AdamW", dict(learning_rate=0.01, weight_decay=0.05)), "AdamW"),
    "adam-amsgrad": (("Adam", dict(learning_rate=0.01, amsgrad=True)),
                     ("AdamW", dict(learning_rate=0.01, weight_decay=0.0, amsgrad=True)), None),
    "sgd-momentum-decay": (("SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
                           ("SGDW", dict(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
                           "SGD(weight_decay)"),
    "sgd-momentum": (("SGD", dict(learning_rate=0.05, momentum=0.9)),
                     ("SGDW", dict(learning_rate=0.05, momentum=0.9)), None),
    # no slots: the step count is the state (a schedule's position)
    "sgd-schedule": (("SGD", dict(learning_rate=SCHEDULE)), ("SGDW", dict(learning_rate=SCHEDULE)), None),
}

FORMATS = {"keras3": ("weights.h5", "keras", "checkpoint"),
           "keras2": ("checkpoint", "tf-weights", "keras"),
           "legacy": ("checkpoint", "tf-weights")}


def hosts_own_is_an_oracle(facts, params):
    """The host has the case's own optimizer, and it computes the rule: not where the
    deviations table records it computing another formula (TF 2.9's experimental AdamW) -- a
    run handed between it and optcompat cannot equal either straight run there."""
    needs = CASES[params["case"]][2]
    if needs is None:
        return True
    reason = match(("oracle", needs), facts.family, facts.versions)
    return has_builtin(facts, needs) and (reason is None or isinstance(reason, Drift))


def restores_from(facts, params):
    """The family restores optimizer state from this format (on this backend and release),
    and the host has the case's own optimizer, an oracle there."""
    fmt = params["fmt"]
    if fmt not in FORMATS[facts.family] or not hosts_own_is_an_oracle(facts, params):
        return False
    if fmt == "checkpoint" and facts.backend != "tensorflow":
        return False
    if fmt == "keras" and fmt not in facts.formats:
        return False
    return match(("save", fmt), facts.family, facts.versions) is None


def host_own(host, name, kwargs):
    """The host's own optimizer ``name`` of this family (support.host_class)."""
    import support

    cls = support.host_class(host, name)
    if cls is None and name == "AdamW":
        return host.host_adamw(**kwargs)
    return cls(**kwargs)


def make(host, side, case):
    (theirs, their_kw), (ours, our_kw), _ = CASES[case]
    their_kw, our_kw = ({k: host.exponential_decay(*v[1:]) if v == SCHEDULE else v for k, v in kw.items()}
                        for kw in (their_kw, our_kw))
    if side == "host":
        return host_own(host, theirs, their_kw)
    opt = host.make(ours, **our_kw)
    opt.fast_path = None
    return opt


def compiled(host, side, case, seed=0):
    model = host.dense_model(seed=seed)
    model.compile(optimizer=make(host, side, case), loss="mse")
    return model


def train(model, epochs):
    x, y = data()
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)


def save(host, model, fmt, base):
    if fmt == "weights.h5":
        model.save_weights(base + ".weights.h5")
        return base + ".weights.h5"
    return host.save(model, fmt, base)


def restore(host, model, fmt, path):
    """As a user resumes: the model compiled with its optimizer, built, then restored."""
    if host.family != "legacy":  # (OptimizerV2 creates and restores its slots at the first step)
        model.optimizer.build(model.trainable_variables)
    if fmt == "checkpoint":
        host.tf.train.Checkpoint(model=model, optimizer=model.optimizer).restore(path).expect_partial()
    else:
        model.load_weights(path)


@applies(restores_from)
@pytest.mark.parametrize("direction", ["host-to-optcompat", "optcompat-to-host"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fmt", ["weights.h5", "keras", "checkpoint", "tf-weights"])
def test_a_run_moves_between_the_hosts_optimizer_and_optcompats(host, fmt, case, direction, tmp_path):
    first, second = ("host", "optcompat") if direction == "host-to-optcompat" else ("optcompat", "host")
    straight = compiled(host, first, case)
    train(straight, 4)
    before = compiled(host, first, case)
    train(before, 2)
    path = save(host, before, fmt, str(tmp_path / "saved"))
    after = compiled(host, second, case, seed=1)
    restore(host, after, fmt, path)
    train(after, 2)
    assert host.iterations(after.optimizer) == 16  # 8 steps saved + 8 resumed
    assert np.max(np.abs(flat(after) - flat(straight))) < 1e-6
    # and the state really moved: from fresh slots the run ends elsewhere
    fresh = compiled(host, second, case, seed=1)
    fresh.set_weights(before.get_weights())
    train(fresh, 2)
    assert np.max(np.abs(flat(fresh) - flat(straight))) > 1e-4


@pytest.mark.families("keras3")
def test_a_file_of_another_shape_is_refused_and_nothing_changes(host, tmp_path):
    """optcompat's Keras 3 loader checks every saved shape before it assigns any: a file of
    another model leaves the optimizer as it was, and says why."""
    model = compiled(host, "optcompat", "adamw")
    train(model, 1)
    other = host.dense_model(n_in=3)  # the first kernel is (3, 8), not (4, 8)
    other.compile(optimizer=make(host, "optcompat", "adamw"), loss="mse")
    x, y = data()
    other.fit(x[:, :3], y, batch_size=16, epochs=1, verbose=0)
    store = {}
    other.optimizer.save_own_variables(store)
    before = host.slots(model.optimizer)
    with pytest.raises(ValueError, match="shape"):
        model.optimizer.load_own_variables(store)
    for a, b in zip(before, host.slots(model.optimizer)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.families("keras3")
@pytest.mark.backends("jax")
def test_jax_keeps_weight_decay_among_the_variables_and_files_get_the_hosts_list(host):
    """On JAX the ``weight_decay`` variable is one of the optimizer's variables (stateless
    steps receive only those); files still get the host's list, and a list with it (as
    ``variables`` gives it) loads too."""
    model = compiled(host, "optcompat", "adamw")
    train(model, 1)
    opt = model.optimizer
    own = host.host_adamw(learning_rate=0.01, weight_decay=0.05)
    own.build(model.trainable_variables)
    assert len(opt.variables) == len(own.variables) + 1
    store = {}
    opt.save_own_variables(store)
    assert len(store) == len(own.variables)
    own.load_own_variables(store)
    for a, b in zip(host.slots(own), [host.value(v) for v in opt.variables if "weight_decay" not in v.path]):
        np.testing.assert_array_equal(a, b)
    full = {str(i): host.value(v) for i, v in enumerate(opt.variables)}
    fresh = compiled(host, "optcompat", "adamw", seed=1)
    fresh.optimizer.weight_decay = 0.3
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.optimizer.load_own_variables(full)
    assert fresh.optimizer.weight_decay == pytest.approx(0.05)
    for a, b in zip(host.slots(fresh.optimizer), full.values()):
        np.testing.assert_array_equal(a, b)
