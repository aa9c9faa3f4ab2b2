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


# Hosts whose own optimizers do not save their state with the model (measured: TF 2.10's
# experimental Adam, saved after 8 steps to .h5 or SavedModel, reloads with fresh zero slots
# and resumes 0.29 away from the uninterrupted run).  The resume test is skipped there.
_TF29_210_SAVE = ("the TF 2.9/2.10 experimental (keras2) optimizers do not save their slots with "
                  "the model in .h5 or SavedModel: the host's own Adam resumes from zero state too")
NO_OPTIMIZER_STATE_IN_SAVE = {"keras2-tf2.9": _TF29_210_SAVE, "keras2-tf2.10": _TF29_210_SAVE}


def known(host, name):
    return KNOWN.get(repr(host), {}).get(name)
