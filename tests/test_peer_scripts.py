"""Real scripts of TensorFlow Addons' users, run with one changed import line.

tests/scripts/peers/ holds optcompat's own ports (scaled down for CI: data made in the script, a
few steps, seeds fixed) of keras-io's TFA-era examples that trained with
``tfa.optimizers.AdamW``: the Vision Transformer (``vit_tfa.py``) and the MLP-Mixer
(``mlp_mixer_tfa.py``), each written as TFA's users wrote it -- ``import tensorflow_addons as
tfa`` ... ``tfa.optimizers.AdamW(learning_rate=..., weight_decay=...)``.  Each test derives
optcompat's version by changing exactly that import line (``import optcompat.tfa as tfa``;
difflib holds the diff to that one line) and runs the script in a fresh process:

* where TensorFlow Addons installs (TF 2.6-2.15 here: the scripts need TF 2.6's layer names,
  MultiHeadAttention and tf.nn.gelu, so not TF 2.2-2.5), the script as TFA's users ran it, in a
  fresh process too: the losses, validation losses and test loss equal TFA's within 1e-5
  (relative);
* where it cannot -- TF 2.16+ (tf.keras is Keras 3; with ``TF_USE_LEGACY_KERAS=1`` it is
  tf_keras) and Keras 3 on jax and torch -- optcompat's run has finite, decreasing losses, and
  equals the same script with its import line made ``import tfa_host_adamw as tfa``
  (tests/scripts/peers/tfa_host_adamw.py): the host Keras's own ``AdamW`` given TFA's decay as
  ``weight_decay / learning_rate``, no optcompat code in it, within 1e-5 (relative) on jax and
  1e-4 with TensorFlow or torch, where optcompat's fused kernels round differently from Keras's
  op-by-op AdamW (FAST_PATH_TOL).

On Keras 3 with jax or torch the scripts' TensorFlow calls (``tf.image.extract_patches``,
``tf.reshape``, ``tf.nn.gelu``, ...) cannot run: there each script has a Keras 3 form
(``*_tfa_keras3.py``: ``keras.ops`` for them), whose optimizer lines are still TFA's and which is
run with the same one changed line.  With TensorFlow (TF 2.16+ and Keras 3's tensorflow backend)
the TF form runs as it is.
"""
import difflib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support import CAPTURE
from support import ENV
from support import keras3_backend

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "peers")
TFA_LINE = "import tensorflow_addons as tfa"
OPTCOMPAT_LINE = "import optcompat.tfa as tfa"
CHECK_LINE = "import tfa_host_adamw as tfa"
CHECK_MODULE = "tfa_host_adamw.py"
TOL = 1e-5  # relative, every number the script reports
# Against the host's own AdamW with TensorFlow or torch: optcompat steps through fused kernels
# there by default (optcompat/_tf_fast.py: TensorFlow's ResourceApplyAdam, in every TF family;
# _torch_fast.py: torch's fused AdamW, its decay x (1 - d) with a float32 (1 - d)), Keras's AdamW
# op by op; their float32 roundings part by ~1e-7 a step and training grows that: measured after
# 9 steps (MLP-Mixer, ViT) 1.2e-5 and 3.3e-6 on Keras 3.15 with torch (3.3: 1.1e-5, 4.4e-6),
# 5.6e-6 and 2.3e-6 with tensorflow (TF 2.21), 4.3e-6 and 4.6e-6 on tf_keras 2.21 (OptimizerV2),
# 0 on jax (no fast path).  A decay left out moves these losses by 2.4e-2 (measured on jax), so
# 1e-4 still tells TFA's decay from another.
FAST_PATH_TOL = 1e-4

# form -> (script suffix, extra environment of its processes)
FORMS = {
    "tf.keras": ("_tfa.py", {}),  # the TF form as it is: TF 2.6-2.15's Keras; Keras 3 on TF 2.16+
    "tf_keras": ("_tfa.py", {"TF_USE_LEGACY_KERAS": "1"}),  # TF 2.16+: tf.keras made tf_keras
    "keras3": ("_tfa_keras3.py", {"SCRIPT_KERAS": "keras"}),  # Keras 3 form, jax / torch
}


def applies(facts, form):
    if form == "keras3":
        return facts.family == "keras3" and facts.backend in ("jax", "torch")
    if not (facts.has("tensorflow") and facts.at(tensorflow=">=2.6")
            and facts.backend == "tensorflow"):
        return False
    if form == "tf_keras":  # the env's own TF_USE_LEGACY_KERAS=1 makes "tf.keras" this already
        return (facts.at(tensorflow=">=2.16") and facts.has("tf_keras")
                and os.environ.get("TF_USE_LEGACY_KERAS") != "1")
    return True


def tolerance(form):
    """The tolerance against the host's own AdamW: FAST_PATH_TOL where optcompat steps through
    fused kernels (TensorFlow: the TF forms, every family; Keras 3 on tensorflow or torch)."""
    backend = keras3_backend() if form == "keras3" else "tensorflow"
    return FAST_PATH_TOL if backend in ("tensorflow", "torch") else TOL


def one_line_changed(source, line):
    """``source`` with TFA's import line made ``line``; difflib holds the change to that line."""
    assert source.splitlines().count(TFA_LINE) == 1, "the script imports TFA as %r once" % TFA_LINE
    changed = source.replace(TFA_LINE + "\n", line + "\n")
    diff = [d for d in difflib.unified_diff(source.splitlines(), changed.splitlines(),
                                            lineterm="", n=0)
            if d[:1] in "+-" and d[:3] not in ("---", "+++")]
    assert diff == ["-" + TFA_LINE, "+" + line], diff
    return changed


def run_script(folder, name, source, extra_env):
    """``source`` as ``folder/name`` in a fresh Python (its folder the working directory, the
    check's module beside it): the numbers it reports (its ``history:`` line)."""
    os.makedirs(folder)
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(source)
    with open(os.path.join(SCRIPTS, CHECK_MODULE)) as f:
        check = f.read()
    with open(os.path.join(folder, CHECK_MODULE), "w") as f:
        f.write(check)
    env = dict(os.environ, **extra_env)
    proc = subprocess.run([sys.executable, path], cwd=folder, env=env, **CAPTURE, timeout=600)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (name, proc.stdout[-3000:],
                                                        proc.stderr[-5000:])
    lines = [line for line in proc.stdout.splitlines() if line.startswith("history: ")]
    assert len(lines) == 1, proc.stdout[-3000:]
    history = json.loads(lines[0][len("history: "):])
    return np.array(history["loss"] + history["val_loss"] + [history["test_loss"]]), history


@pytest.mark.applies(lambda facts, params: applies(facts, params["form"]))
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("script", ["vit", "mlp_mixer"])
def test_tfa_users_script_with_one_changed_import(script, form, tmp_path):
    suffix, extra_env = FORMS[form]
    name = script + suffix
    with open(os.path.join(SCRIPTS, name)) as f:
        source = f.read()
    ours, history = run_script(str(tmp_path / "optcompat"), name,
                               one_line_changed(source, OPTCOMPAT_LINE), extra_env)
    epochs = len(history["loss"])
    assert epochs == 3 and np.all(np.isfinite(ours)), history
    assert history["loss"][-1] < history["loss"][0], history
    assert history["val_loss"][-1] < history["val_loss"][0], history
    with_tfa = form == "tf.keras" and ENV.versions.get("tensorflow_addons") is not None
    if with_tfa:  # the script as TFA's users ran it
        theirs, _ = run_script(str(tmp_path / "tfa"), name, source, extra_env)
        oracle = "TensorFlow Addons %s's own run" % ENV.versions["tensorflow_addons"]
    else:
        theirs, _ = run_script(str(tmp_path / "check"), name, one_line_changed(source, CHECK_LINE),
                               extra_env)
        oracle = "the host's own AdamW (tfa_host_adamw.py)"
    error = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
    tol = TOL if with_tfa else tolerance(form)
    assert error <= tol, "%s (%s): optcompat.tfa's losses %.3g from %s (relative)\n%s\n%s" % (
        name, form, error, oracle, ours.tolist(), theirs.tolist())
    print("%s (%s): %d losses, %d validation losses and the test loss within %.2g (relative) of %s"
          % (name, form, epochs, epochs, error, oracle))


def test_mlp_mixer_as_keras_io_wrote_it_needs_a_second_change():
    """keras-io's MLP-Mixer wrote its activation as ``tfa.layers.GELU()`` (mlp_mixer_tfa.py uses
    core ``tf.nn.gelu`` there): with only the import line changed that line stops at an
    AttributeError saying that optcompat.tfa is TFA's decoupled weight decay only, naming what
    it provides -- the second change docs/migration/tfa.md tells of."""
    import optcompat.tfa as tfa

    with pytest.raises(AttributeError) as info:
        tfa.layers.GELU()
    message = str(info.value)
    assert "'layers'" in message and "tfa.optimizers.AdamW" in message and "not part of" in message, message
    with open(os.path.join(SCRIPTS, "mlp_mixer_tfa.py")) as f:
        assert f.read().count("layers.Activation(tf.nn.gelu),  # the example: tfa.layers.GELU()") == 2
