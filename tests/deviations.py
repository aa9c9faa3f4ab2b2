"""Known deviations of host optimizers from exact arithmetic, as data (not test branches).

Key: the host harness's name (``repr(host)``), then the optcompat class.  For an entry, the
oracle tests assert instead that the host really is off the float64 reference by more than
float32 rounding (so a fixed host makes the entry fail and get removed) and that optcompat
is no farther from the reference than the host is.
"""
_TF29_ADAMW = ("TF 2.9's tf.keras.optimizers.experimental.AdamW decays as var -= var*(1 - lr*wd), "
               "i.e. it removes almost the whole weight each step; optcompat follows the rule instead.")


class Drift(str):
    """A KNOWN entry that is a float32 rounding drift, not a different formula: there the
    host's own optimizer still checks mechanisms layered on the rule (EMA, accumulation, loss
    scaling), at DRIFT_TOL -- the drift of both over 40 steps, far below what a wrong
    mechanism gives (e.g. 3e-2 for a decay on accumulation-only steps)."""


DRIFT_TOL = 1e-5

# A Drift entry is a float32 rounding drift (see Drift); any other entry a different formula.
KNOWN = {
    "keras2-tf2.9": {"AdamW": _TF29_ADAMW},
    "keras3-torch": {
        "AdamW": Drift("Keras 3's torch backend AdamW decays with torch._foreach_mul_(x, 1 - wd*lr) "
                       "(the factor rounded to float32 each step) and updates m as b1*m + (1-b1)*g; "
                       "over 40 steps it drifts ~3.5e-6 from exact arithmetic, where Keras on "
                       "tensorflow/jax and optcompat's keras convention stay ~1.2e-6 (optcompat's fused "
                       "torch kernel, which rounds the decay as x*(1 - d) too: 2.8e-6)."),
        "SGDW": Drift("Keras 3's torch backend SGD(weight_decay) decays with the same "
                      "torch._foreach_mul_(x, 1 - wd*lr), the factor rounded to float32 each step: over 40 "
                      "steps at lr 0.02, wd 0.1, momentum 0.9 it drifts 2.6e-6 from exact arithmetic, "
                      "where optcompat's keras convention stays 0.9e-6."),
    },
}


def oracle_tolerance(host, name, tol):
    """The bound at which ``host``'s own ``name`` (decay included) is an oracle: ``tol``,
    DRIFT_TOL where it has a recorded rounding drift, None where it is off by a different
    formula (KNOWN says why)."""
    reason = known(host, name)
    if reason is None:
        return tol
    return DRIFT_TOL if isinstance(reason, Drift) else None


# Where the host's own optimizers do not come back from a save format with their state
# (iterations, slots): (family, format, first and last TF minor, reason).  The resume test
# checks that the host's own Adam really cannot resume there (else the entry must go), and
# skips optcompat there with the reason.
_TF29_210_SAVE = ("the TF 2.9/2.10 experimental (keras2) optimizers do not save their slots with "
                  "the model in .h5 or SavedModel: the host's own Adam resumes from zero state too "
                  "(measured on TF 2.10: 0.29 away from the uninterrupted run)")
_SAVEDMODEL = ("load_model of a SavedModel rebuilds the optimizer from its config but does not "
               "restore its state: the host's own Adam comes back with iterations 0 and zero "
               "slots (measured: legacy on TF 2.8, keras2 on TF 2.11, 2.15 and tf_keras 2.21); "
               "use .h5 / .keras or a checkpoint to resume")
_LEGACY_KERAS = ("the .keras format cannot restore OptimizerV2 (optimizers.legacy) state: in Keras "
                 "2.13-2.14 load_model fails with \"'Adam' object has no attribute 'build'\", in "
                 "Keras 2.15 and tf_keras 2.16-2.21 the host's legacy Adam reloads with iterations=0 "
                 "and no slots (2.12 restores it); .h5 keeps the state in every release")
SAVE_LIMITS = [
    ("keras2", "h5", 9, 10, _TF29_210_SAVE),
    ("keras2", "savedmodel", 9, 10, _TF29_210_SAVE),
    ("keras2", "savedmodel", 11, 21, _SAVEDMODEL),
    ("legacy", "savedmodel", 2, 21, _SAVEDMODEL),
    ("legacy", "keras", 13, 21, _LEGACY_KERAS),
]


def no_state_in_save(host, fmt):
    """The recorded reason if ``host``'s own optimizers lose their state in ``fmt``, else None."""
    minor = getattr(host, "tf_version", (0, 0))[1]
    for family, form, first, last, reason in SAVE_LIMITS:
        if host.family == family and fmt == form and first <= minor <= last:
            return reason
    return None


def _keras3_minor(host):
    """The minor of ``host``'s Keras 3 release (5 for 3.5.0), None for the other families."""
    return int(host.keras.__version__.split(".")[1]) if host.family == "keras3" else None


def known(host, name):
    return KNOWN.get(repr(host), {}).get(name)


# Keras 3 releases whose base optimizer, under ``gradient_accumulation_steps``, applies the
# weight decay at every call of ``apply`` -- also on the calls that only accumulate, so the
# weights move between updates (keras-team/keras#19990, fixed by #19998 in Keras 3.5).
# optcompat's decay is part of its rule, so it decays on update steps only, as Keras >= 3.5.
# (first, last) Keras minor of the 3.x line, and the reason.
ACCUMULATION_DECAY = ((0, 4), "Keras 3.0-3.4 decays the weights at every call of apply under "
                              "gradient_accumulation_steps, also on the calls that only accumulate "
                              "(keras-team/keras#19990, fixed in 3.5); optcompat decays on update steps only")


def decays_between_updates(host):
    """The recorded reason if ``host``'s own optimizers decay on accumulation-only steps, else None."""
    minor = _keras3_minor(host)
    if minor is None:
        return None
    first, last = ACCUMULATION_DECAY[0]
    return ACCUMULATION_DECAY[1] if first <= minor <= last else None


# Where the host's own AdamW / SGD(weight_decay) keep `weight_decay` as a Python float, read
# when fit's step is traced: a later `optimizer.weight_decay = x` (a callback's schedule) does
# not reach the compiled steps, while eager ones use it.  (family, backends or None for all,
# reason).  optcompat keeps the decay in an optimizer variable, read in the step.  The test
# checks that each entry still reproduces (the host's compiled fit differs from its eager one).
STALE_WEIGHT_DECAY = [
    ("keras3", ("jax", "tensorflow"), "Keras 3's AdamW / SGD(weight_decay) read `weight_decay` as "
     "a Python float when fit's step is traced (jax.jit, tf.function): a later "
     "`optimizer.weight_decay = x` (a callback) is ignored by the compiled steps, which keep "
     "the first value; eager steps (run_eagerly, the torch backend) use it"),
    ("keras2", None, "the Keras 2 AdamW / SGD(weight_decay) read `weight_decay` as a Python float "
     "when fit's step is traced (tf.function): a later `optimizer.weight_decay = x` (a callback) "
     "is ignored by the compiled steps, which keep the first value; eager steps use it"),
]


def stale_weight_decay(host):
    """The recorded reason if ``host``'s own optimizers keep the traced ``weight_decay``, else None."""
    for family, backends, reason in STALE_WEIGHT_DECAY:
        if host.family == family and (backends is None or host.backend in backends):
            return reason
    return None


# Where the host's own `fit` under `compile(jit_compile=True)` fails whatever the optimizer:
# (family, backend, (first, last) Keras 3 minor, reason).  test_jit_compiled_fit_equals_plain_fit
# checks that the host's own AdamW still fails there (else the entry must go); the tests that
# need a jit-compiled fit skip with the reason there.
JIT_COMPILE_LIMITS = [
    ("keras3", "torch", (7, 11), "Keras 3.7-3.11's fit under compile(jit_compile=True) fails on the torch "
     "backend (torch 2.13, Python 3.11) with Keras's own optimizers too: dynamo cannot compile Keras's "
     "loss code (AssertionError: exception table entry start instruction has no offset); Keras 3.6 and "
     "3.12+ compile (measured: 3.6.0, 3.7.0, 3.8.0, 3.9.2, 3.10.0, 3.11.3, 3.12.4)"),
]


def jit_compile_fails(host):
    """The recorded reason if ``host``'s own jit-compiled ``fit`` fails, else None."""
    minor = _keras3_minor(host)
    for family, backend, (first, last), reason in JIT_COMPILE_LIMITS:
        if minor is not None and host.family == family and host.backend == backend and first <= minor <= last:
            return reason
    return None


# Keras 3 releases whose own optimizers, in fit under tf.distribute.MirroredStrategy (2 CPU
# replicas), do not give the one-device numbers on the same global batch: ((first, last) Keras 3
# minor, reason).  test_mirrored_strategy_equals_one_device checks there that optcompat's
# mirrored fit equals the host's own mirrored one, and that the host still differs.
MIRRORED = ((0, 7), "Keras 3.0-3.7's fit under MirroredStrategy differs from one device with Keras's own "
                    "optimizers (measured, 3 epochs x 4 steps: Keras 3.0.5 / 3.3.3 on TF 2.16 Adam 0.069, "
                    "SGD(momentum) 0.24; 3.6.0 / 3.7.0 on TF 2.18 Adam 2.5e-6, SGD(momentum) 0.71); "
                    "Keras 3.8+ equals one device (6e-8)")


def mirrored_deviation(host):
    """The recorded reason if ``host``'s own optimizers under MirroredStrategy differ from one device."""
    minor = _keras3_minor(host)
    if minor is None:
        return None
    (first, last), reason = MIRRORED
    return reason if first <= minor <= last else None


# Where the host's own optimizers do not give the dense result for a sparse gradient
# (tf.IndexedSlices: an Embedding's gradient on TensorFlow, a row per token occurrence, so a
# token seen twice in a batch repeats its row): (family, peer, TF minors or None for all,
# reason).  optcompat gives the dense result in every family -- the numbers of jax / torch,
# where the gradient is dense.  The sparse tests check that each entry still reproduces, and
# that optcompat's sparse step equals the host's own step on the densified gradient.
_SUM_OF_SQUARES = ("apply IndexedSlices as they come: with a repeated index (a token seen twice in "
                   "a batch) v gets the sum of the squared slices, not the square of their sum, so an "
                   "Embedding trains differently than with a dense gradient")
SPARSE = [
    ("keras3", "Adam", None, "Keras 3.0-3.15's Adam / AdamW on TensorFlow " + _SUM_OF_SQUARES + " (as on jax / torch)"),
    ("keras2", "Adam", (9, 9), "TF 2.9's tf.keras.optimizers.experimental Adam / AdamW " + _SUM_OF_SQUARES
                               + " (TF 2.10 sums repeated indices first)"),
    ("legacy", "SGD", None, "OptimizerV2 SGD with momentum is lazy on IndexedSlices "
                            "(ResourceSparseApplyKerasMomentum): the rows not in this step's gradient "
                            "keep their momentum and do not move"),
    ("legacy", "TFA", None, "TensorFlow Addons' AdamW / SGDW decay only the rows in this step's "
                            "IndexedSlices (and SGDW's momentum is lazy, as OptimizerV2 SGD's); "
                            "convention=\"tfa\" decays every row, as TFA does for a dense gradient"),
]


def sparse_deviation(host, peer):
    """The recorded reason if ``host``'s own ``peer`` ("Adam", "SGD" or "TFA": the host's Adam /
    AdamW, SGD with momentum, TensorFlow Addons' AdamW / SGDW) is not dense-equivalent on
    sparse gradients, else None.  Only TensorFlow variables get sparse gradients."""
    if host.backend != "tensorflow":
        return None
    minor = getattr(host, "tf_version", (0, 0))[1]
    for family, kind, minors, reason in SPARSE:
        if host.family == family and kind == peer and (minors is None or minors[0] <= minor <= minors[1]):
            return reason
    return None
