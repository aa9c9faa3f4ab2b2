"""Known deviations of host optimizers from exact arithmetic, as data (not test branches).

Key: the host harness's name (``repr(host)``), then the optcompat class.  For an entry, the
oracle tests assert instead that the host really is off the float64 reference by more than
float32 rounding (so a fixed host makes the entry fail and get removed) and that optcompat
is no farther from the reference than the host is.
"""
_TF29_ADAMW = ("TF 2.9's tf.keras.optimizers.experimental.AdamW decays as var -= var*(1 - lr*wd), "
               "i.e. it removes almost the whole weight each step; optcompat follows the rule instead.")

KNOWN = {
    "keras2-tf2.9": {"AdamW": _TF29_ADAMW},
    "keras3-torch": {
        "AdamW": "Keras 3's torch backend AdamW decays with torch._foreach_mul_(x, 1 - wd*lr) "
                 "(the factor rounded to float32 each step) and updates m as b1*m + (1-b1)*g; "
                 "over 40 steps it drifts ~3.5e-6 from exact arithmetic, where Keras on "
                 "tensorflow/jax (and optcompat's keras convention on every backend) stays ~1.2e-6.",
    },
}


# (host, format) where the host's own optimizers do not save their state (measured: TF 2.10's
# experimental Adam, saved after 8 steps to .h5 or SavedModel, reloads with fresh zero slots
# and resumes 0.29 away from the uninterrupted run).  The resume test is skipped there.
_TF29_210_SAVE = ("the TF 2.9/2.10 experimental (keras2) optimizers do not save their slots with "
                  "the model in .h5 or SavedModel: the host's own Adam resumes from zero state too")
_KERAS2_SAVEDMODEL = ("load_model of a SavedModel does not restore the Keras 2 (new) optimizers' "
                      "state: the host's own Adam comes back with iterations 0 and zero slots "
                      "(measured on TF 2.11, 2.15 and tf_keras 2.21); use .keras/.h5 or a checkpoint")
NO_OPTIMIZER_STATE_IN_SAVE = dict(
    [(("keras2-tf2.%d" % v, "h5"), _TF29_210_SAVE) for v in (9, 10)]
    + [(("keras2-tf2.%d" % v, "savedmodel"), _TF29_210_SAVE if v < 11 else _KERAS2_SAVEDMODEL)
       for v in range(9, 16)]
    + [(("keras2-tf2.%d-tf_keras" % v, "savedmodel"), _KERAS2_SAVEDMODEL) for v in range(16, 22)])


def known(host, name):
    return KNOWN.get(repr(host), {}).get(name)
