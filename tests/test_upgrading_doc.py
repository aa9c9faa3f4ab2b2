"""docs/upgrading.md's blocks run: the "before" block where tf.keras is Keras 2 (TF 2.2-2.15),
its shell commands on what it wrote, and the "after" block in Keras 3 on a file of the same
model's state (written here by the env's own Keras: the file is the same on every release;
tests/test_state_chain.py hands it across releases for real).  Docs move with code."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from support import ENV
from support import applies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "upgrading.md")


def blocks(language):
    """The page's fenced blocks of ``language``, in order."""
    with open(PAGE) as f:
        text = f.read()
    return re.findall(r"```%s\n(.*?)```" % language, text, flags=re.S)


def block(title):
    found = [b for b in blocks("python") if b.startswith("# " + title)]
    assert len(found) == 1, "docs/upgrading.md has no single python block starting '# %s'" % title
    return found[0]


def tf_keras_is_keras2(facts, params):
    return facts.backend == "tensorflow" and facts.family == ENV.default and facts.family in ("legacy", "keras2")


def run_in(folder, code, **env):
    """Run ``code`` as a script in ``folder`` (a fresh interpreter: the page's imports as written),
    ``env`` added to the environment."""
    script = os.path.join(folder, "block.py")
    with open(script, "w") as f:
        f.write(code)
    out = subprocess.run([sys.executable, script], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=300, env=dict(os.environ, **env))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out


def shell(folder, line):
    """One line of the page's bash block, ``python`` being this env's interpreter."""
    args = line.split()
    assert args[0] == "python"
    out = subprocess.run([sys.executable] + args[1:], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=300)
    assert out.returncode == 0, line + "\n" + out.stderr[-4000:]
    return out.stdout


@applies(tf_keras_is_keras2)
def test_the_before_block_and_its_commands_run(host, tmp_path):
    run_in(str(tmp_path), block("Before the upgrade"))
    assert os.path.exists(str(tmp_path / "run.npz"))
    outputs = [shell(str(tmp_path), line) for b in blocks("bash") for line in b.strip().splitlines()]
    assert any("step:        16" in o and "kernel" in o for o in outputs), outputs
    from optcompat import state

    converted = state.read(str(tmp_path / "from-checkpoint.npz"))
    saved = state.read(str(tmp_path / "run.npz"))
    assert converted.iterations == saved.iterations == 16
    for a, b in zip(converted.slots, saved.slots):
        np.testing.assert_array_equal(a["m"], b["m"])


@pytest.mark.families("keras3")
def test_the_after_block_runs(host, tmp_path):
    """The file the before block writes, made here with this Keras (same model, same data,
    the host's own Adam, 16 steps), then the after block as written."""
    from optcompat import state

    keras = host.keras
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [0.0]], "float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    state.save(model.optimizer, str(tmp_path / "run.npz"), model.trainable_variables)
    # as the page says: where TF_USE_LEGACY_KERAS=1 makes tf_keras the default Keras (the env
    # declares it), optcompat.AdamW is tf_keras's, and OPTCOMPAT_FAMILY=keras3 gives Keras 3's
    legacy_default = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    run_in(str(tmp_path), block("After the upgrade"), **({"OPTCOMPAT_FAMILY": "keras3"} if legacy_default else {}))
