"""Record what one tox env computes, for the cross-release identity check of ``ci/matrix.py``.

    python ci/record.py --env NAME --out DIR        (tox.ini runs this after the tests)

writes ``DIR/NAME.json``: the env, its Python, ``optcompat.describe()`` and, for every family
the env has (the same families the tests run -- the env's declaration, tests/support.py --
through the same harness, ``tests/support.py``):

* ``fixed``: the 40-step fixed-gradient trajectories of ``AdamW`` (default convention) and of
  ``SGDW`` with momentum on ``support.problem()`` (tests/support.py), with the per-step max-abs error
  against the float64 reference (``tests/reference.py``);
* ``fit``: a 200-step ``model.fit`` of a small dense model (fixed initial weights set with
  ``model.set_weights``, fixed data, fixed batch size, ``shuffle=False``, ``AdamW``): the loss
  of every epoch and the final loss (``model.evaluate`` on all the data);
* ``distributions``: every installed distribution and its version (``ci/matrix.py`` fails an
  env that resolved a pre-release).

An env with no family (no host, or its adapter not written yet) records that and succeeds.
A family whose recording raises is recorded with the error, and the exit status is 1.
Runs on every Python the matrix has (3.8 up) and NumPy 1.18 up.
"""
import argparse
import json
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = 1

# The recorded runs.  Changing any of these changes every env's record: rerun the matrix.
FIXED = {
    # name: (optimizer, kwargs, problem seed); kwargs from tests/support.py
    "AdamW": ("AdamW", "ADAM_CASES", "plain", 0),
    "SGDW-momentum": ("SGDW", "SGD_CASES", "momentum", 1),
}
FIT = dict(samples=64, features=4, hidden=8, batch_size=16, epochs=50, seed=7,
           learning_rate=0.01, weight_decay=0.01)  # 64 / 16 = 4 steps an epoch, 200 steps


def _tests():
    """The test helpers (harness, reference, problem()) -- the recorder runs what the tests run."""
    path = os.path.join(ROOT, "tests")
    if path not in sys.path:
        sys.path.insert(0, path)
    import reference
    import support

    return support, reference, support


def _floats(a):
    import numpy as np

    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def record_fixed(host, reference, tt):
    import numpy as np

    out = {}
    for label, (name, table, case, seed) in sorted(FIXED.items()):
        kwargs = dict(getattr(tt, table)[case])
        x0, grads = tt.problem(seed)
        traj = tt.run(host, name, kwargs, x0, grads)
        ref = tt.expected(reference.adamw if name == "AdamW" else reference.sgdw, kwargs, x0, grads)
        err = [max(float(np.max(np.abs(a - b))) for a, b in zip(sa, sb)) for sa, sb in zip(traj, ref)]
        out[label] = {
            "optimizer": name,
            "kwargs": kwargs,
            "problem_seed": seed,
            "steps": len(grads),
            # every step's weights, all variables flattened in order: the cross-env comparison
            "trajectory": [[v for x in step for v in _floats(x)] for step in traj],
            "final_weights": [_floats(x) for x in traj[-1]],
            "max_abs_error_vs_reference": err,
        }
    return out


def fit_problem():
    """Data and initial weights of the recorded fit, from NumPy alone (the same in every env)."""
    import numpy as np

    c = FIT
    rng = np.random.default_rng(c["seed"])
    x = rng.normal(size=(c["samples"], c["features"])).astype(np.float32)
    w_true = rng.normal(size=(c["features"], 1))
    y = (np.sin(x.astype(np.float64) @ w_true) + 0.1 * rng.normal(size=(c["samples"], 1))).astype(np.float32)
    weights = [
        rng.normal(scale=0.5, size=(c["features"], c["hidden"])),
        rng.normal(scale=0.1, size=(c["hidden"],)),
        rng.normal(scale=0.5, size=(c["hidden"], 1)),
        rng.normal(scale=0.1, size=(1,)),
    ]
    return x, y, [w.astype(np.float32) for w in weights]


def numpy_loss(weights, x, y):
    """The fit's MSE in float64 from weights, independent of the host."""
    import numpy as np

    w1, b1, w2, b2 = [np.asarray(w, np.float64) for w in weights]
    pred = np.tanh(x.astype(np.float64) @ w1 + b1) @ w2 + b2
    return float(np.mean((pred - y.astype(np.float64)) ** 2))


def record_fit(host):
    c = FIT
    x, y, weights = fit_problem()
    model = host.dense_model(n_in=c["features"], n_out=1)
    model.set_weights(weights)
    model.compile(optimizer=host.make("AdamW", learning_rate=c["learning_rate"],
                                      weight_decay=c["weight_decay"]), loss="mse")
    initial = _evaluate(model, x, y)
    history = model.fit(x, y, batch_size=c["batch_size"], epochs=c["epochs"], shuffle=False, verbose=0)
    final = _evaluate(model, x, y)
    steps = c["epochs"] * -(-c["samples"] // c["batch_size"])
    return {
        "config": dict(c),
        "steps": steps,
        "initial_loss": initial,
        "epoch_loss": [float(v) for v in history.history["loss"]],
        "final_loss": final,
        "final_loss_numpy": numpy_loss(model.get_weights(), x, y),
        "iterations": host.iterations(model.optimizer),
    }


def _evaluate(model, x, y):
    out = model.evaluate(x, y, batch_size=len(x), verbose=0)
    return float(out[0] if isinstance(out, (list, tuple)) else out)


def distributions():
    """``{name: version}`` of every distribution installed in this env (``importlib.metadata``)."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8: the record says nothing, ci/matrix.py falls back
        return None
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        if name:
            found.setdefault(name, dist.version)
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def record(env, families=None):
    """The record of this env (a dict); ``families`` defaults to those the tests run."""
    import optcompat

    describe = optcompat.describe()
    rec = {"schema": SCHEMA, "env": env, "python": sys.version.split()[0], "describe": describe,
           "distributions": distributions(), "families": {}, "errors": {}}
    hosts, reference, tt = _tests()
    if families is None:
        families = [f for f in hosts.ENV.families if f in hosts.HOSTS]
    # families whose host is installed but that are not recorded here (no adapter yet, or no harness)
    rec["not_recorded"] = {f: ("no adapter optcompat.%s yet" % f if not optcompat._detect.adapter_available(f)
                               else "not declared for this env, or no harness in tests/support.py")
                           for f in sorted(optcompat._detect.host_modules()) if f not in families}
    if not families:
        rec["note"] = "no family recorded: %s" % (
            "; ".join("%s host installed, %s" % kv for kv in sorted(rec["not_recorded"].items()))
            or "no TensorFlow / Keras host installed")
    for family in families:
        start = time.time()
        try:
            host = hosts.make_host(family)
            rec["families"][family] = {
                "host": repr(host),
                "devices": host.devices(),  # the run uses the backend's default: a GPU where one is visible
                "fixed": record_fixed(host, reference, tt),
                "fit": record_fit(host),
                "seconds": round(time.time() - start, 2),
            }
        except Exception:  # record it; the exit status says it failed
            rec["errors"][family] = traceback.format_exc()
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", required=True, help="tox env name (the file name of the record)")
    ap.add_argument("--out", required=True, help="folder for ENV.json (created if missing)")
    args = ap.parse_args(argv)
    start = time.time()
    rec = record(args.env)
    rec["seconds"] = round(time.time() - start, 2)
    if not os.path.isdir(args.out):
        os.makedirs(args.out)
    path = os.path.join(args.out, args.env + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    fams = ", ".join("%s (fit loss %.6g)" % (k, v["fit"]["final_loss"]) for k, v in sorted(rec["families"].items()))
    print("record: %s -> %s in %.1fs: %s" % (args.env, path, rec["seconds"], fams or rec.get("note", "-")))
    for family, err in sorted(rec["errors"].items()):
        print("record: %s FAILED:\n%s" % (family, err), file=sys.stderr)
    return 1 if rec["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
