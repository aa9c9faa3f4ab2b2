"""One name per optimizer in every family: ``compile(optimizer="optcompat>AdamW")``,
``optimizers.get`` and a config dict naming ``optcompat>AdamW`` work in every family (the
default family's class); the per-family names (``optcompat.keras2>AdamW``, ...) keep loading
the files already written -- into that family where this Keras has it, into the registry's
family elsewhere (optcompat/_names.py states the rule; the expectations here are derived from
the env's declared families, not from that module)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import optcompat
from deviations import match
from support import CAPTURE
from support import ENV
from support import applies

WRITTEN = {"keras3": "optcompat>AdamW", "keras2": "optcompat.keras2>AdamW", "legacy": "optcompat.legacy>AdamW"}

# Configs as each family wrote them (get_config of AdamW(learning_rate=0.01, weight_decay=0.1)):
# Keras 3.15, TF 2.15 (Keras 2), TF 2.6 (OptimizerV2).
CONFIGS = {
    "keras3": {"class_name": "optcompat>AdamW", "config": {
        "name": "AdamW", "learning_rate": 0.01, "weight_decay": 0.1, "clipnorm": None, "global_clipnorm": None,
        "clipvalue": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
        "loss_scale_factor": None, "gradient_accumulation_steps": None, "beta_1": 0.9, "beta_2": 0.999,
        "epsilon": 1e-07, "amsgrad": False, "convention": "keras", "exclude_from_weight_decay": None,
        "lr_multipliers": None, "weight_decays": None, "strict_names": False, "fast_path": "auto"}},
    "keras2": {"class_name": "optcompat.keras2>AdamW", "config": {
        "name": "AdamW", "weight_decay": 0.1, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
        "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "jit_compile": False,
        "is_legacy_optimizer": False, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False,
        "convention": "keras", "exclude_from_weight_decay": None, "lr_multipliers": None, "weight_decays": None,
        "strict_names": False, "fast_path": "auto", "learning_rate": 0.01}},
    "legacy": {"class_name": "optcompat.legacy>AdamW", "config": {
        "name": "AdamW", "learning_rate": 0.01, "weight_decay": 0.1, "beta_1": 0.9, "beta_2": 0.999,
        "epsilon": 1e-07, "amsgrad": False, "convention": "keras", "exclude_from_weight_decay": None,
        "lr_multipliers": None, "weight_decays": None, "strict_names": False, "fast_path": "auto", "decay": 0.0}},
}


def registry_families(family):
    """The families in ``family``'s Keras registry: Keras 3 alone; tf.keras / tf_keras hold
    OptimizerV2 and, from TF 2.9, Keras 2."""
    return ["keras3"] if family == "keras3" else [f for f in ENV.families if f in ("keras2", "legacy")]


def expected_family(name_family, family):
    """The family a name resolves to in ``family``'s registry (None: the common name)."""
    here = registry_families(family)
    if name_family in here:
        return name_family
    return ENV.default if ENV.default in here else "keras2" if "keras2" in here else here[0]


def test_each_class_keeps_writing_its_familys_name(host):
    for name in ("AdamW", "SGDW"):
        written = name if host.facts.writes_class_names else WRITTEN[host.family].replace("AdamW", name)
        assert host.registered_name(getattr(host.module, name)) == written


@pytest.mark.parametrize("name_family", [None, "keras3", "keras2", "legacy"])
def test_every_name_resolves_in_every_registry(host, name_family):
    for family in ENV.families:  # every adapter imported: each registers its names
        optcompat.family_module(family)
    want = optcompat.family_module(expected_family(name_family, host.family))
    for name in ("AdamW", "SGDW"):
        written = ("optcompat>%s" % name if name_family in (None, "keras3")
                   else "optcompat.%s>%s" % (name_family, name))
        assert type(host.keras.optimizers.get(written)) is getattr(want, name), written


@pytest.mark.parametrize("writer", sorted(CONFIGS))
def test_a_config_any_family_wrote_loads_here(host, writer):
    """The config (as saved in a model file, JSON) of each family's AdamW deserializes here, with
    its arguments; another family's host-only arguments at values that change nothing are dropped."""
    for family in ENV.families:
        optcompat.family_module(family)
    config = json.loads(json.dumps(CONFIGS[writer]))
    opt = host.keras.optimizers.deserialize(config)
    assert type(opt) is optcompat.family_module(expected_family(writer, host.family)).AdamW
    again = opt.get_config()
    assert (again["learning_rate"], again["weight_decay"], again["convention"]) == (0.01, 0.1, "keras")
    # the common name in a config dict, as a user writes one
    opt = host.keras.optimizers.get({"class_name": "optcompat>AdamW", "config": {"learning_rate": 0.02,
                                                                                 "weight_decay": 0.3}})
    assert type(opt) is optcompat.family_module(expected_family(None, host.family)).AdamW
    assert (opt.get_config()["learning_rate"], opt.get_config()["weight_decay"]) == (0.02, 0.3)


@pytest.mark.families("legacy")
def test_a_foreign_argument_that_would_change_something_is_refused(host):
    """Keras 2's EMA asked for in a config loaded by OptimizerV2 (which has none): the host refuses it."""
    config = json.loads(json.dumps(CONFIGS["keras2"]))
    config["class_name"] = "optcompat.legacy>AdamW"
    config["config"]["use_ema"] = True
    with pytest.raises((TypeError, ValueError), match="use_ema"):
        host.keras.optimizers.deserialize(config)


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import optcompat
    {imports}
    step, path = sys.argv[1], sys.argv[2]
    if step == "save":
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
        model.compile(optimizer="optcompat>AdamW", loss="mse")
        x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
        history = model.fit(x, x[:, :1], batch_size=16, epochs=2, verbose=0)
        sgdw = keras.optimizers.get("optcompat>SGDW")
        config = keras.optimizers.get({{"class_name": "optcompat>AdamW",
                                        "config": {{"learning_rate": 0.01, "weight_decay": 0.2}}}})
        model.save(path)
        print(json.dumps(dict(compiled=type(model.optimizer).__module__ + "." + type(model.optimizer).__name__,
                              sgdw=type(sgdw).__module__ + "." + type(sgdw).__name__,
                              config=[type(config).__module__, config.get_config()["weight_decay"]],
                              loss=[float(v) for v in history.history["loss"]])))
    else:
        model = keras.models.load_model(path)
        opt = model.optimizer
        print(json.dumps(dict(loaded=type(opt).__module__ + "." + type(opt).__name__,
                              iterations=int(np.asarray(opt.iterations)))))
""")

IMPORTS = {"keras": "import keras", "tf_keras": "import tf_keras as keras",
           "tensorflow.keras": "import tensorflow as tf\nkeras = tf.keras"}


@applies(lambda facts, params: facts.family == expected_family(None, facts.family))
def test_compile_with_the_common_name_fit_save_and_load_in_fresh_processes(host, tmp_path):
    """As a user writes it, in each Keras (tf.keras, tf_keras, Keras 3): ``compile(optimizer=
    "optcompat>AdamW")``, ``fit``, ``save``; then a fresh process loads the file (no
    custom_objects) and gets the same class and step count."""
    # tf.keras / tf_keras (TF 2.13+) keep compile()'s optimizer argument in a .keras file as given,
    # and load_model turns a registered name into the class, which compile() refuses (any
    # registered optimizer's name; tests/deviations.py): their .h5 keeps the optimizer's own config
    formats = [f for f in (("keras", "h5") if host.family == "keras3" else ("h5",)) if f in host.formats]
    resuming = [f for f in formats if match(("save", f), host.family, host.versions) is None]
    fmt = (resuming or formats)[0]
    script = tmp_path / "user.py"
    script.write_text(SCRIPT.format(imports=IMPORTS[host.namespace]))

    def run(step, path):
        return subprocess.run([sys.executable, str(script), step, path], **CAPTURE,
                              timeout=600, env=dict(os.environ))

    module = "optcompat." + host.family
    if match("compile_name", host.family, host.versions):  # Keras 3.0-3.3 (tests/deviations.py)
        out = run("save", str(tmp_path / "model.keras"))
        assert out.returncode == 0, out.stderr[-4000:]
        saved = json.loads(out.stdout.strip().splitlines()[-1])
        assert saved["compiled"] == module + ".AdamW" and saved["config"] == [module, 0.2]
        out = run("load", str(tmp_path / "model.keras"))
        assert out.returncode != 0 and "Could not interpret optimizer identifier: <class 'optcompat." in out.stderr
        return
    path = str(tmp_path / ("model." + fmt))
    outs = []
    for step in ("save", "load"):
        out = run(step, path)
        assert out.returncode == 0, out.stderr[-4000:]
        outs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    saved, loaded = outs
    if host.family != "keras3" and match("compile_name", host.family, host.versions):
        keras_file = str(tmp_path / "model.keras")
        assert run("save", keras_file).returncode == 0
        out = run("load", keras_file)
        assert out.returncode != 0 and "Could not interpret optimizer identifier: <class 'optcompat." in out.stderr
    assert saved["compiled"] == module + ".AdamW" and saved["sgdw"] == module + ".SGDW"
    assert saved["config"] == [module, 0.2]
    assert np.all(np.isfinite(saved["loss"])) and saved["loss"][1] < saved["loss"][0]
    assert loaded["loaded"] == module + ".AdamW"
    if resuming:
        assert loaded["iterations"] == 4
    print(host, fmt, saved, loaded)
