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


# Save formats that lose a family's optimizer state, keyed by family: (format, first TF
# release affected, reason).  The harness saves such a family in HDF5 (``.h5``) instead;
# test_tf_specifics checks that the host's own optimizer of that family still cannot
# resume from that format (a fixed host makes the check fail, and the entry gets changed).
LOST_STATE_FORMATS = {
    "legacy": (".keras", (2, 13),
               "the .keras format cannot restore OptimizerV2 (tf.keras.optimizers.legacy) "
               "state: in Keras 2.13-2.14 load_model fails with \"AttributeError: 'Adam' object "
               "has no attribute 'build'\", in Keras 2.15 and tf_keras 2.16-2.21 even the "
               "host's legacy Adam reloads with iterations=0 and no slots (Keras 2.12 restores "
               "it); .h5 keeps the state in every release."),
}


def loses_state(family, suffix, tf_version):
    """The recorded reason if saving ``family``'s optimizer as ``suffix`` with TensorFlow
    ``tf_version`` (a ``(major, minor)`` tuple) loses its state, else None."""
    entry = LOST_STATE_FORMATS.get(family)
    if entry and entry[0] == suffix and tuple(tf_version) >= entry[1]:
        return entry[2]
    return None
