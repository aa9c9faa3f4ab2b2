"""The portable state file: one ``.npz`` (NumPy's zip of arrays) holding a JSON header.

Every family on every release reads it (NumPy is all it needs).  The header says what the
arrays are; the arrays are the optimizer's state per model variable, and the variable's
value at saving (so a converted checkpoint can also seed a model where its own format is
unreadable).  Array names: ``"<i>/<slot>"`` (``0/m``, ``0/v``, ``3/momentum``) and
``"<i>/value"``, ``i`` the variable's position in the list given to ``save``.

Header (JSON, ``FORMAT_VERSION`` 1)::

    format          "optcompat.state"
    format_version  1 (a reader refuses a newer one)
    kind            "adam" (slots m, v, vhat) or "sgd" (slot momentum): the state's meaning
    optimizer       the class it was read from ("keras.src.optimizers.adamw.AdamW")
    family          "keras3" / "keras2" / "legacy" (where it was read)
    convention      whose update rule the state belongs to (optcompat's conventions)
    hyperparameters learning_rate (a float or a serialized schedule), weight_decay, beta_1,
                    beta_2, epsilon, amsgrad, momentum, nesterov: the values given
    versions        host versions at saving (tensorflow, keras, ...), python
    iterations      the step count (an int)
    slots           the slot keys present for every variable, in order
    variables       [{"name", "shape", "dtype"}] in order (name None where unknown)
    arrays          {array name: {"shape", "dtype", "sha256"}}: a damaged file is refused

Written to a temporary file first and renamed: a crash while saving leaves the old file.
"""

import hashlib
import io
import json
import os
import zipfile

import numpy as np

FORMAT = "optcompat.state"
FORMAT_VERSION = 1
HEADER = "header"
KINDS = {"adam": ("m", "v", "vhat"), "sgd": ("momentum",)}


class StateError(ValueError):
    """A state file or a state that cannot be used here: the message names what differs.

    A `ValueError`; raised before anything changes.
    """


def _digest(array):
    array = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(array.dtype.str.encode())
    h.update(repr(array.shape).encode())
    h.update(array.tobytes())
    return h.hexdigest()


def _describe(array):
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "sha256": _digest(array),
    }


DESCRIBED = ("kind", "optimizer", "family", "convention", "hyperparameters", "slots")


def described(kind, optimizer, family, convention, hyperparameters, slots):
    """What a header says of the optimizer (the table above), as ``describe`` finds it in an
    optimizer or a reader in a file: ``convention`` None where the file does not record it."""
    return dict(locals())  # the parameters, by name


def header(described, *, iterations, variables, versions=None, source=None):
    """A state's header (the table above, less ``arrays``), as ``save`` and every reader of
    another format build it: ``described`` (:func:`described`'s keys), ``versions`` {} where
    unknown, ``source`` (where a converted state was read) only when given."""
    built = {key: described[key] for key in DESCRIBED}  # (describe's info has more)
    built["slots"] = list(built["slots"])
    built.update(versions=versions or {}, iterations=iterations, variables=variables)
    if source is not None:
        built["source"] = source
    return built


def write(path, header, arrays):
    """Write ``header`` (a JSON-able dict, without ``arrays``) and ``arrays`` ({name:
    ndarray}) to ``path`` atomically."""
    header = dict(
        header,
        format=FORMAT,
        format_version=FORMAT_VERSION,
        arrays={name: _describe(a) for name, a in sorted(arrays.items())},
    )
    blob = np.frombuffer(
        json.dumps(header, indent=1, sort_keys=True).encode("utf-8"), dtype=np.uint8
    )
    buffer = io.BytesIO()
    np.savez(buffer, **dict(arrays, **{HEADER: blob}))
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def is_state_file(path):
    """Whether ``path`` is meant as a state file: named ``.npz`` (read() then says what is
    wrong with it), or a zip holding this format's header (cheap: the zip's listing)."""
    if str(path).endswith(".npz"):
        return True
    try:
        with zipfile.ZipFile(path) as z:
            return HEADER + ".npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def read(path):
    """``(header, arrays)`` of a state file, every array checked against the header."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if HEADER not in names:
                raise StateError(
                    "%s is not an optcompat state file (no header; it holds %s)."
                    % (path, ", ".join(sorted(names)[:5]) or "nothing")
                )
            header = json.loads(bytes(npz[HEADER]).decode("utf-8"))
            arrays = {name: npz[name] for name in names if name != HEADER}
    except StateError:
        raise
    except FileNotFoundError:
        raise
    except Exception as e:  # a truncated zip, a damaged member, bad JSON
        raise StateError(
            "%s is truncated or corrupted and cannot be read (%s: %s)."
            % (path, type(e).__name__, e)
        )
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StateError(
            "%s is not an optcompat state file (format %r)."
            % (path, header.get("format"))
        )
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StateError(
            "%s has state format version %r, newer than this optcompat reads (%d): "
            "upgrade optcompat where you load it." % (path, version, FORMAT_VERSION)
        )
    listed = header.get("arrays", {})
    if sorted(listed) != sorted(arrays):
        missing, extra = (
            sorted(set(listed) - set(arrays)),
            sorted(set(arrays) - set(listed)),
        )
        raise StateError(
            "%s is corrupted: arrays missing %s, unexpected %s."
            % (path, missing, extra)
        )
    for name, array in arrays.items():
        if _describe(array) != listed[name]:
            raise StateError(
                "%s is corrupted: array %r does not match its checksum." % (path, name)
            )
    return header, arrays
