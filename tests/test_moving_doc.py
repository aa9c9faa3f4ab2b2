"""docs/moving.md's blocks run as a user runs them, one after another in one folder: the
PyTorch section (torch -> its shell commands -> Keras 3 on this env's backend -> torch) where
torch and Keras are installed, the optax section (optax -> Keras 3 on jax -> optax) where optax
is and Keras runs on jax.  Docs move with code."""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "moving.md")


def page():
    with open(PAGE) as f:
        return f.read()


def block(number):
    found = [b for b in re.findall(r"```python\n(.*?)```", page(), flags=re.S) if b.startswith("# %d. " % number)]
    assert len(found) == 1, "docs/moving.md has no single python block starting '# %d. '" % number
    return found[0]


def run(folder, args, stdin_code=None):
    out = subprocess.run([sys.executable] + args, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=300, input=stdin_code)
    assert out.returncode == 0, " ".join(args) + "\n" + out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout


def run_block(folder, number):
    script = os.path.join(folder, "block%d.py" % number)
    with open(script, "w") as f:
        f.write(block(number))
    return run(folder, [script])


def missing(*modules):
    return [m for m in modules if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(bool(missing("torch", "keras")), reason="needs torch and keras: %s missing"
                    % ", ".join(missing("torch", "keras")))
def test_the_pytorch_section_runs(tmp_path):
    folder = str(tmp_path)
    run_block(folder, 1)
    commands = re.findall(r"```bash\n(.*?)```", page(), flags=re.S)[0].strip().splitlines()
    shown = [run(folder, line.split()[1:]) for line in commands]
    assert "step:        20" in shown[0] and "convention:  torch" in shown[0]
    assert "torch.save of an optimizer state_dict" in shown[1] and "slots m, v, vhat" in shown[1]
    assert "step 20" in shown[2] and os.path.exists(os.path.join(folder, "from-torch.npz"))
    run_block(folder, 2)
    assert "tensor(40.)" in run_block(folder, 3)


@pytest.mark.skipif(bool(missing("optax", "keras")) or os.environ.get("KERAS_BACKEND") != "jax",
                    reason="needs optax and Keras 3 on jax (KERAS_BACKEND=jax)")
def test_the_optax_section_runs(tmp_path):
    folder = str(tmp_path)
    run_block(folder, 4)
    assert run_block(folder, 5).strip().endswith("40")
