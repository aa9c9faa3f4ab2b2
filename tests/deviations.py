"""Known behaviours of the host optimizers that differ from exact arithmetic or from what
optcompat does, as data: ONE list of ONE record type, DEVIATIONS, matched by ONE function,
``match(what, family, versions)``, and rendered by ONE loop (``rows``: ci/docs.py writes the
README's deviations table from it).

A record: ``Deviation(family, specifiers, what, reason)``.  ``specifiers`` are version ranges
over the host versions, as tests/support.py reads them with importlib.metadata (the versions
detection reads), plus the Keras backend: ``{"tensorflow": ">=2.9,<2.10"}``,
``{"keras": ">=3.7,<3.12", "backend": "torch"}`` (support.matches: comma = and, a bar = one of
these names; ``{}``: every release of the family).  ``what`` says which behaviour:

* ``("oracle", "AdamW" | "SGDW")``: the host's own AdamW / SGD(weight_decay) numbers are off
  exact arithmetic; a ``Drift`` reason is a float32 rounding drift, any other a different
  formula.  test_oracles asserts the host really is off the float64 reference by more than
  float32 rounding (so a fixed host makes the entry fail and get removed) and that optcompat
  is no farther from the reference than the host is.
* ``("save", FORMAT)``: the host's own optimizers do not come back from FORMAT with their
  state; test_save_resume checks that the host's own Adam really cannot resume there.
* ``"accumulation_decay"``, ``"stale_weight_decay"``, ``"jit_compile"``, ``"mirrored"``, ``"multiworker"``,
  ``"parameter_server"``:
  see each reason; the tests check each entry still reproduces.
* ``("sparse", "Adam" | "SGD" | "TFA")``: the host's peer is not dense-equivalent on
  tf.IndexedSlices gradients.
* ``("peer", "NadamW")``: a peer package's class computes otherwise than the optcompat class
  that stands in for it (test_keras_adamw checks the difference is still there, and bounded).
"""
import collections

from support import matches

Deviation = collections.namedtuple("Deviation", "family specifiers what reason")


class Drift(str):
    """A KNOWN entry that is a float32 rounding drift, not a different formula: there the
    host's own optimizer still checks mechanisms layered on the rule (EMA, accumulation, loss
    scaling), at DRIFT_TOL -- the drift of both over 40 steps, far below what a wrong
    mechanism gives (e.g. 3e-2 for a decay on accumulation-only steps)."""


DRIFT_TOL = 1e-5


DRIFT_TOL = 1e-5

_TF29_ADAMW = ("TF 2.9's tf.keras.optimizers.experimental.AdamW decays as var -= var*(1 - lr*wd), "
               "i.e. it removes almost the whole weight each step; optcompat follows the rule instead.")

_TF29_210_SAVE = ("the TF 2.9/2.10 experimental (keras2) optimizers do not save their slots with "
                  "the model in .h5 or SavedModel: the host's own Adam resumes from zero state too "
                  "(measured on TF 2.10: 0.29 away from the uninterrupted run)")
_SAVEDMODEL = ("load_model of a SavedModel rebuilds the optimizer from its config but does not "
               "restore its state: the host's own Adam comes back with iterations 0 and zero "
               "slots (measured: legacy on TF 2.1 and 2.8, keras2 on TF 2.11, 2.15 and tf_keras 2.21); "
               "use .h5 / .keras or a checkpoint to resume")
_LEGACY_KERAS = ("the .keras format cannot restore OptimizerV2 (optimizers.legacy) state: in Keras "
                 "2.13-2.14 load_model fails with \"'Adam' object has no attribute 'build'\", in "
                 "Keras 2.15 and tf_keras 2.16-2.21 the host's legacy Adam reloads with iterations=0 "
                 "and no slots; .h5 keeps the state in every release")
_KERAS3_H5 = ("Keras 3 cannot resume a model loaded from .h5: load_model brings the optimizer back built for "
              "other variables, and the next fit raises (\"Unknown variable\" on torch and tensorflow, "
              "\"optimizer_variables must be a list ... 1:1\" on jax), the host's own Adam too (measured: Keras "
              "3.15 on jax, torch, tensorflow; 3.3 on torch; with loss=\"mse\" load_model itself fails: "
              "\"Could not deserialize 'keras.metrics.mse'\"); use .keras")
_TF_KERAS_COMPILE_NAME = (
    "tf.keras 2.13-2.15 and tf_keras keep compile()'s optimizer argument in a .keras file as given, "
    "and load_model turns a registered optimizer's name (any: 'optcompat>AdamW', a user's own) into "
    "the class, which compile() refuses ('Could not interpret optimizer identifier'); compile with an "
    "instance, save .h5 (which keeps the optimizer's own config) or load_model(..., compile=False) "
    "(measured: TF 2.13.1, 2.14.1, 2.15.1 and tf_keras 2.21 fail; TF 2.12's model.save('m.keras') "
    "writes an HDF5 file, which loads)")
_SUM_OF_SQUARES = ("apply IndexedSlices as they come: with a repeated index (a token seen twice in "
                   "a batch) v gets the sum of the squared slices, not the square of their sum, so an "
                   "Embedding trains differently than with a dense gradient")

DEVIATIONS = [
    Deviation("keras2", {"tensorflow": ">=2.9,<2.10"}, ("oracle", "AdamW"), _TF29_ADAMW),
    Deviation("keras3", {"backend": "torch"}, ("oracle", "AdamW"),
              Drift("Keras 3's torch backend AdamW decays with torch._foreach_mul_(x, 1 - wd*lr) "
                       "(the factor rounded to float32 each step) and updates m as b1*m + (1-b1)*g; "
                       "over 40 steps it drifts ~3.5e-6 from exact arithmetic, where Keras on "
                       "tensorflow/jax and optcompat's keras convention stay ~1.2e-6 (optcompat's fused "
                       "torch kernel, which rounds the decay as x*(1 - d) too: 2.8e-6).")),
    Deviation("keras3", {"backend": "torch"}, ("oracle", "SGDW"),
              Drift("Keras 3's torch backend SGD(weight_decay) decays with the same "
                      "torch._foreach_mul_(x, 1 - wd*lr), the factor rounded to float32 each step: over 40 "
                      "steps at lr 0.02, wd 0.1, momentum 0.9 it drifts 2.6e-6 from exact arithmetic, "
                      "where optcompat's keras convention stays 0.9e-6.")),
    # where the host's own optimizers do not come back from a save format with their state
    Deviation("keras2", {"tensorflow": ">=2.9,<2.11"}, ("save", "h5"), _TF29_210_SAVE),
    Deviation("keras2", {"tensorflow": ">=2.9,<2.11"}, ("save", "savedmodel"), _TF29_210_SAVE),
    Deviation("keras2", {"tensorflow": ">=2.11,<2.22"}, ("save", "savedmodel"), _SAVEDMODEL),
    Deviation("legacy", {"tensorflow": ">=1.15,<2.22"}, ("save", "savedmodel"), _SAVEDMODEL),
    Deviation("legacy", {"tensorflow": ">=2.13,<2.22"}, ("save", "keras"), _LEGACY_KERAS),
    Deviation("keras3", {}, ("save", "h5"), _KERAS3_H5),
    # Keras 3 releases whose base optimizer, under ``gradient_accumulation_steps``, applies the
    # weight decay at every call of ``apply`` -- also on the calls that only accumulate, so the
    # weights move between updates (keras-team/keras#19990, fixed by #19998 in Keras 3.5).
    # optcompat's decay is part of its rule, so it decays on update steps only, as Keras >= 3.5.
    Deviation("keras3", {"keras": ">=3.0,<3.5"}, "accumulation_decay",
              "Keras 3.0-3.4 decays the weights at every call of apply under "
                              "gradient_accumulation_steps, also on the calls that only accumulate "
                              "(keras-team/keras#19990, fixed in 3.5); optcompat decays on update steps only"),
    # where the host's own AdamW / SGD(weight_decay) keep `weight_decay` as a Python float, read
    # when fit's step is traced: a later `optimizer.weight_decay = x` (a callback's schedule) does
    # not reach the compiled steps, while eager ones use it.  optcompat keeps the decay in an
    # optimizer variable, read in the step.  The test checks that each entry still reproduces.
    Deviation("keras3", {"backend": "jax|tensorflow"}, "stale_weight_decay",
              "Keras 3's AdamW / SGD(weight_decay) read `weight_decay` as "
     "a Python float when fit's step is traced (jax.jit, tf.function): a later "
     "`optimizer.weight_decay = x` (a callback) is ignored by the compiled steps, which keep "
     "the first value; eager steps (run_eagerly, the torch backend) use it"),
    Deviation("keras2", {}, "stale_weight_decay",
              "the Keras 2 AdamW / SGD(weight_decay) read `weight_decay` as a Python float "
     "when fit's step is traced (tf.function): a later `optimizer.weight_decay = x` (a callback) "
     "is ignored by the compiled steps, which keep the first value; eager steps use it"),
    # where the host's own `fit` under `compile(jit_compile=True)` fails whatever the optimizer;
    # the tests that need a jit-compiled fit are deselected there, and one checks it still fails
    # where a .keras file of a model compiled with a registered optimizer's name does not load
    # (test_names checks it still fails there and loads everywhere else)
    # where the host's own schedules.serialize writes a class's bare name: test_schedules and
    # test_import check it still comes back as the host's class there, and as optcompat's in an
    # optimizer's config and a saved model everywhere
    Deviation("legacy", {"tensorflow": "<2.2"}, "schedule_name",
              "tf.keras before TF 2.2 writes a class's bare name: an optcompat schedule given to "
              "the host's own tf.keras.optimizers.schedules.serialize by hand comes back from its "
              "deserialize as TF's class of that name (CosineDecay, CosineDecayRestarts; WarmUp and "
              "CosineAnnealing come back); in an optimizer's get_config and a saved model optcompat "
              "writes 'optcompat>CosineDecay', which loads (measured: TF 1.15.5, 2.0.4, 2.1.4)"),
    # test_tfa checks a face's file still loads as TFA's class there with TFA imported
    Deviation("legacy", {"tensorflow": "<2.1"}, "tfa_bare_name",
              "TensorFlow Addons 0.6 (TF 2.0) registers its classes under their bare names "
              "(AdamW, SGDW) when imported, as TF 2.0 writes them: with TFA imported, a file of "
              "optcompat.tfa.AdamW loads as TFA's class, which refuses `convention`; load it with "
              "custom_objects={'AdamW': optcompat.tfa.AdamW} (TFA 0.9 on TF 2.1 registers "
              "'Addons>AdamW' and leaves the bare name to optcompat)"),
    Deviation("keras2", {"tensorflow": ">=2.13,<2.22"}, "compile_name", _TF_KERAS_COMPILE_NAME),
    Deviation("legacy", {"tensorflow": ">=2.13,<2.22"}, "compile_name", _TF_KERAS_COMPILE_NAME),
    Deviation("keras3", {"keras": ">=3.0,<3.4"}, "compile_name",
              "Keras 3.0-3.3's load_model of a .keras file whose compile() was given a registered "
              "optimizer's name (any: 'optcompat>AdamW', a user's own) fails: compile_from_config "
              "turns the name into the class, which optimizers.get refuses ('Could not interpret "
              "optimizer identifier'); Keras's own names ('adam') and optimizer instances load, and "
              "Keras 3.4+ loads it (measured: 3.3.3 fails; 3.4.1, 3.6.0, 3.9.2, 3.12.4, 3.15.1 load)"),
    Deviation("keras3", {"keras": ">=3.7,<3.12", "backend": "torch"}, "jit_compile",
              "Keras 3.7-3.11's fit under compile(jit_compile=True) fails on the torch "
     "backend (torch 2.13, Python 3.11) with Keras's own optimizers too: dynamo cannot compile Keras's "
     "loss code (AssertionError: exception table entry start instruction has no offset); Keras 3.6 and "
     "3.12+ compile (measured: 3.6.0, 3.7.0, 3.8.0, 3.9.2, 3.10.0, 3.11.3, 3.12.4)"),
    # Keras 3 releases whose own optimizers, in fit under tf.distribute.MirroredStrategy (2 CPU
    # replicas), do not give the one-device numbers on the same global batch:
    # test_mirrored_strategy_equals_one_device checks there that optcompat's mirrored fit equals
    # the host's own mirrored one, and that the host still differs.
    Deviation("keras3", {"keras": ">=3.0,<3.8", "backend": "tensorflow"}, "mirrored",
              "Keras 3.0-3.7's fit under MirroredStrategy differs from one device with Keras's own "
                    "optimizers (measured, 3 epochs x 4 steps: Keras 3.0.5 / 3.3.3 on TF 2.16 Adam 0.069, "
                    "SGD(momentum) 0.24; 3.6.0 / 3.7.0 on TF 2.18 Adam 2.5e-6, SGD(momentum) 0.71); "
                    "Keras 3.8+ equals one device (6e-8)"),
    Deviation("keras3", {"backend": "tensorflow"}, "multiworker",
              "Keras 3's model.fit under MultiWorkerMirroredStrategy raises with Keras's own optimizers too "
              "(measured, 2 workers on 127.0.0.1, AdamW: Keras 3.3.3 / TF 2.16 \"Invalid reduction dimension 0 "
              "for input with 0 dimensions\"; 3.6.0 / TF 2.18, 3.9.2 / TF 2.19, 3.12.4 / TF 2.20, 3.15.1 / TF "
              "2.21 \"Attempt to convert a value (PerReplica...)\"); optcompat's raises the same way"),
    Deviation("keras3", {"backend": "tensorflow"}, "parameter_server",
              "Keras 3's model.fit cannot train under tf.distribute.ParameterServerStrategy, with Keras's own "
              "optimizers too (measured, a chief, 2 workers and 2 parameter servers on 127.0.0.1, AdamW: Keras "
              "3.15.1 / TF 2.21 \"ValueError: To use this dataset, you need to pass this dataset to "
              "ClusterCoordinator.create_per_worker_dataset\"; keras/src has no ClusterCoordinator code); "
              "optcompat's raises the same way. The TF "
              "families train there (TF 2.6+: legacy and keras2, tf_keras)"),
    # where the host's own optimizers do not give the dense result for a sparse gradient
    # (tf.IndexedSlices: an Embedding's gradient on TensorFlow, a row per token occurrence, so a
    # token seen twice in a batch repeats its row).  optcompat gives the dense result in every
    # family -- the numbers of jax / torch, where the gradient is dense.  The sparse tests check
    # that each entry still reproduces, and that optcompat's sparse step equals the host's own
    # step on the densified gradient.  Only TensorFlow variables get sparse gradients.
    Deviation("keras3", {"backend": "tensorflow"}, ("sparse", "Adam"),
              "Keras 3.0-3.15's Adam / AdamW on TensorFlow " + _SUM_OF_SQUARES + " (as on jax / torch)"),
    Deviation("keras2", {"tensorflow": ">=2.9,<2.10"}, ("sparse", "Adam"),
              "TF 2.9's tf.keras.optimizers.experimental Adam / AdamW " + _SUM_OF_SQUARES
                               + " (TF 2.10 sums repeated indices first)"),
    Deviation("legacy", {}, ("sparse", "SGD"), "OptimizerV2 SGD with momentum is lazy on IndexedSlices "
                            "(ResourceSparseApplyKerasMomentum): the rows not in this step's gradient "
                            "keep their momentum and do not move"),
    Deviation("legacy", {}, ("sparse", "TFA"), "TensorFlow Addons' AdamW / SGDW decay only the rows in this step's "
                            "IndexedSlices (and SGDW's momentum is lazy, as OptimizerV2 SGD's); "
                            "convention=\"tfa\" decays every row, as TFA does for a dense gradient"),
    Deviation("legacy", {}, ("peer", "NadamW"), "keras-adamw 1.38's NadamW divides by sqrt(v' + epsilon), Keras's "
                            "Nadam by sqrt(v') + epsilon; optcompat.keras_adamw.NadamW is the host's own Nadam step "
                            "(measured: 1.1e-5 apart after 38 steps of an LSTM with epsilon 1e-7, where gradients "
                            "near 0 meet epsilon; AdamW and SGDW agree within 2e-6)"),
]


def match(what, family, versions):
    """The reason of the entry recorded for behaviour ``what`` of a ``family`` host with these
    ``versions`` (support.Facts.versions / a harness's ``host.versions``: the host versions
    and "backend"), else None."""
    for d in DEVIATIONS:
        if d.what == what and d.family == family and matches(d.specifiers, versions):
            return d.reason
    return None


def oracle_tolerance(host, name, tol):
    """The bound at which ``host``'s own ``name`` (decay included) is an oracle: ``tol``,
    DRIFT_TOL where it has a recorded rounding drift, None where it is off by a different
    formula (DEVIATIONS says why)."""
    reason = match(("oracle", name), host.family, host.versions)
    if reason is None:
        return tol
    return DRIFT_TOL if isinstance(reason, Drift) else None


WHAT = {"oracle": "host `{0}` numbers", "save": "resume from `{0}`",
        "accumulation_decay": "decay under `gradient_accumulation_steps`",
        "stale_weight_decay": "`weight_decay` set during `fit`",
        "jit_compile": "`fit` under `compile(jit_compile=True)`",
        "compile_name": "`.keras` of `compile(optimizer=\"optcompat>AdamW\")`",
        "schedule_name": "`schedules.serialize` of an optcompat schedule",
        "tfa_bare_name": "a `.h5` of `optcompat.tfa.AdamW` with TFA imported",
        "mirrored": "`fit` under `MirroredStrategy`", "sparse": "{0} on sparse gradients",
        "multiworker": "`fit` under `MultiWorkerMirroredStrategy`",
        "parameter_server": "`fit` under `ParameterServerStrategy`", "peer": "{0} numbers"}
PEERS = {"Adam": "`Adam` / `AdamW`", "SGD": "`SGD(momentum)`", "TFA": "TFA `AdamW` / `SGDW`",
         "NadamW": "keras-adamw `NadamW`"}
NAMES = {"tensorflow": "TF", "keras": "Keras", "tf_keras": "tf-keras", "torch": "torch", "jax": "jax"}


def _span(spec):
    """">=2.9,<2.11" -> "2.9-2.10", ">=2.9,<2.10" -> "2.9"; any other range as it is written."""
    clauses = spec.split(",")
    if len(clauses) == 2 and clauses[0].startswith(">=") and clauses[1].startswith("<") \
            and not clauses[1].startswith("<="):
        low, high = clauses[0][2:].split("."), clauses[1][1:].split(".")
        if len(low) == len(high) == 2 and low[0] == high[0]:
            last = "%s.%d" % (high[0], int(high[1]) - 1)
            return clauses[0][2:] if last == clauses[0][2:] else "%s-%s" % (clauses[0][2:], last)
    return spec


def where(d):
    """"`keras2` on TF 2.9-2.10" ...: the family and its specifiers, for the README."""
    parts = []
    for key, spec in sorted(d.specifiers.items(), key=lambda kv: kv[0] == "backend"):
        parts.append(spec.replace("|", " / ") if key == "backend" else "%s %s" % (NAMES.get(key, key), _span(spec)))
    return "`%s`" % d.family + (" on " + ", ".join(parts) if parts else "")


def rows():
    """The README's deviations table: one row per entry."""
    out = ["| host (family, releases) | what | upstream behaviour |", "|---|---|---|"]
    for d in DEVIATIONS:
        kind, arg = (d.what, None) if isinstance(d.what, str) else d.what
        arg = PEERS.get(arg, arg) if kind in ("sparse", "peer") else arg
        out.append("| %s | %s | %s |" % (where(d), WHAT[kind].format(arg), d.reason))
    return out
