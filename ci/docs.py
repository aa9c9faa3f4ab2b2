"""Regenerate the generated sections of README.md from the code and tox.ini.

    python ci/docs.py          rewrite README.md
    python ci/docs.py --check  exit 1 if README.md is stale (tests/test_docs.py runs this)

Sections sit between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``.
"""
import configparser
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from optcompat import _conventions, _detect  # noqa: E402

DECAY = {"lr": "`lr_t*wd*x`", "one": "`wd*x` (not scaled by lr)",
         "schedule": "`eta_t*wd*x`, `eta_t = lr_t/lr_0`"}
EPS = {"outside": "`lr_t*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)`",
       "inside": "`lr_t/(1-b1^t) * m/(sqrt(v)/sqrt(1-b2^t)+eps)`"}
MOMENTUM = {"keras": "`u=mu*u-lr_t*g; x+=u` (nesterov: `x+=mu*u-lr_t*g`)",
            "torch": "`b=mu*b+g` (`b=g` at step 1); `x-=lr_t*b` (nesterov: `x-=lr_t*(g+mu*b)`)"}
FORM = {"subtract": "`x - x*d`", "scale": "`x*(1-d)`"}


def conventions():
    rows = ["| convention | reproduces | decay of the pre-step weight x | Adam step | SGD momentum "
            "| decay rounded as |",
            "|---|---|---|---|---|---|"]
    for c in _conventions.CONVENTIONS.values():
        name = "`%s`%s" % (c.name, " (default)" if c.name == _conventions.DEFAULT else "")
        rows.append("| %s | %s | %s | %s | %s | %s |" % (name, c.peer, DECAY[c.decay], EPS[c.epsilon],
                                                         MOMENTUM[c.momentum], FORM[c.decay_form]))
    return "\n".join(rows)


def tox_envs():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(ROOT, "tox.ini"))
    # the CI subset: the `ci` label (env_list is the whole matrix)
    line = [ln for ln in cfg["tox"]["labels"].splitlines() if ln.strip().startswith("ci")][0]
    envs = [e.strip() for e in re.split(r"[,\s]+", line.split("=", 1)[1]) if e.strip()]
    return envs


def families_in(env):
    """The families an env tests, from its name: what _detect finds with those versions."""
    factors = env.split("-")
    tf = next((f for f in factors if re.fullmatch(r"tf2\d+", f)), None)
    tf = "2.%s" % tf[3:] if tf else ("2.21" if "tf" in factors else None)
    keras3 = "keras3" in factors or (tf is not None and _detect.release(tf) >= (2, 16))
    found = {"tensorflow": tf, "keras": "3.15" if keras3 else None,
             "tf_keras": "2.21" if "tfkeras" in factors else None,
             "jax": None, "torch": None, "tensorflow_addons": None}
    return [f for f in _detect.host_modules(found) if _detect.adapter_available(f)]


def support():
    envs = tox_envs()
    rows = ["| family | host optimizer base | releases | adapter | tox envs (CI) |", "|---|---|---|---|---|"]
    bases = {
        "keras3": "`keras.optimizers.Optimizer`",
        "keras2": "`tf.keras.optimizers.experimental.Optimizer` (2.9-2.10), `tf.keras.optimizers.Optimizer` "
                  "(2.11-2.15), `tf_keras.optimizers.Optimizer`",
        "legacy": "`tf.keras.optimizers.Optimizer` (2.2-2.10), `tf.keras.optimizers.legacy.Optimizer` "
                  "(2.11-2.15), `tf_keras.optimizers.legacy.Optimizer`",
    }
    for fam in _detect.FAMILIES:
        ships = _detect.adapter_available(fam)
        mine = [e for e in envs if fam in families_in(e)]
        rows.append("| `%s` | %s | %s | %s | %s |" % (
            fam, bases[fam], _detect.RELEASES[fam],
            "`optcompat.%s`" % fam if ships else "not yet (planned)",
            ", ".join("`%s`" % e for e in mine) or "-"))
    return "\n".join(rows)


def deviations():
    """Known host deviations and save-format limitations, from tests/deviations.py."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import deviations as dev

    rows = ["| host (test env) | what | upstream behaviour |", "|---|---|---|"]
    for host, entries in sorted(dev.KNOWN.items()):
        for name, reason in sorted(entries.items()):
            rows.append("| `%s` | host `%s` numbers | %s |" % (host, name, reason))
    for family, fmt, first, last, reason in dev.SAVE_LIMITS:
        rows.append("| `%s` on TF 2.%d-2.%d | resume from `%s` | %s |" % (family, first, last, fmt, reason))
    (first, last), reason = dev.ACCUMULATION_DECAY
    rows.append("| `keras3` on Keras 3.%d-3.%d | decay under `gradient_accumulation_steps` | %s |"
                % (first, last, reason))
    for family, backends, reason in dev.STALE_WEIGHT_DECAY:
        where = "`%s`" % family + (" on " + " / ".join(backends) if backends else "")
        rows.append("| %s | `weight_decay` set during `fit` | %s |" % (where, reason))
    for family, backend, (first, last), reason in dev.JIT_COMPILE_LIMITS:
        rows.append("| `%s` on Keras 3.%d-3.%d, %s | `fit` under `compile(jit_compile=True)` | %s |"
                    % (family, first, last, backend, reason))
    (first, last), reason = dev.MIRRORED
    rows.append("| `keras3` on Keras 3.%d-3.%d, tensorflow | `fit` under `MirroredStrategy` | %s |"
                % (first, last, reason))
    peers = {"Adam": "`Adam` / `AdamW`", "SGD": "`SGD(momentum)`", "TFA": "TFA `AdamW` / `SGDW`"}
    for family, kind, minors, reason in dev.SPARSE:
        span = "" if not minors else " on TF 2.%d" % minors[0] if minors[0] == minors[1] \
            else " on TF 2.%d-2.%d" % minors
        where = "`%s`%s" % (family, span)
        if family == "keras3":
            where += " on tensorflow"
        rows.append("| %s | %s on sparse gradients | %s |" % (where, peers[kind], reason))
    return "\n".join(rows)


SECTIONS = {"conventions": conventions, "support": support, "deviations": deviations}


def render(text):
    for name, fn in SECTIONS.items():
        pat = re.compile(r"(<!-- generated:%s -->\n)(?:.*?\n)?(<!-- /generated:%s -->)" % (name, name), re.S)
        if not pat.search(text):
            raise SystemExit("README.md lacks the generated:%s markers" % name)
        text = pat.sub(lambda m: m.group(1) + fn() + "\n" + m.group(2), text)
    return text


def main():
    path = os.path.join(ROOT, "README.md")
    with open(path, encoding="utf-8") as f:
        old = f.read()
    new = render(old)
    if "--check" in sys.argv:
        if new != old:
            print("README.md is stale: run `python ci/docs.py`")
            return 1
        return 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
