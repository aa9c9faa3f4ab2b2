"""Known deviations of host optimizers from exact arithmetic, as data (not test branches).

Key: the host harness's name (``repr(host)``), then the optcompat class.  For an entry, the
oracle tests assert instead that the host really is off the float64 reference by more than
float32 rounding (so a fixed host makes the entry fail and get removed) and that optcompat
is no farther from the reference than the host is.
"""
KNOWN = {
    "keras3-torch": {
        "AdamW": "Keras 3's torch backend AdamW decays with torch._foreach_mul_(x, 1 - wd*lr) "
                 "(the factor rounded to float32 each step) and updates m as b1*m + (1-b1)*g; "
                 "over 40 steps it drifts ~3.5e-6 from exact arithmetic, where Keras on "
                 "tensorflow/jax (and optcompat's keras convention on every backend) stays ~1.2e-6.",
    },
}


def known(host, name):
    return KNOWN.get(repr(host), {}).get(name)


# Save formats that drop a family's optimizer state, keyed by family: the format, and why.
# The harness saves such a family in HDF5 (``.h5``) instead; test_tf_specifics checks that
# the host's own optimizer of that family still loses its state in that format (a fixed
# host makes the check fail, and the entry gets removed).
LOST_STATE_FORMATS = {
    "legacy": (".keras", "Keras 2.12-2.15 and tf_keras 2.16-2.21 write no OptimizerV2 "
                         "(tf.keras.optimizers.legacy) variables to the .keras format: even the "
                         "host's legacy Adam reloads with iterations=0 and no slots, so training "
                         "cannot resume; .h5 keeps them."),
}


def loses_state(family, suffix):
    """The recorded reason if saving ``family``'s optimizer as ``suffix`` drops its state."""
    entry = LOST_STATE_FORMATS.get(family)
    return entry[1] if entry and entry[0] == suffix else None
