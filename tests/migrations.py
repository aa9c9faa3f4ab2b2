"""The migration pages' lines, as one table: each row is a peer's code and optcompat's equivalent.

tests/test_migration.py runs every row where its peer installs -- both sides over the same
40 steps of gradients on a ``kernel`` (3x4) and a ``bias`` (5) -- and asserts equal weights;
``python ci/docs.py`` writes the rows into docs/migration/*.md and the "which convention?" table
into docs/migration/index.md.  A line in those pages is a row here, so every line is tested.

``theirs`` is the peer's code as a user writes it: an expression giving the optimizer, or
statements that set ``opt`` (and ``sched``, a torch scheduler stepped after each step).  It sees
``params`` (torch: the two parameters; optax: ``{"kernel": ..., "bias": ...}``), ``kernel``
and ``bias``, and the peer's modules (``keras`` is the Keras whose optimizers the env's default
family extends: tf.keras, tf_keras or Keras 3).  ``ours`` is an expression over ``optcompat``
(``import optcompat.schedules`` done).
"""
import collections

Row = collections.namedtuple("Row", "peer what theirs ours")

# peer -> (the page, its title in the table, the convention its rows use)
PEERS = collections.OrderedDict([
    ("keras", ("keras.md", "Keras (keras, tf.keras or tf_keras)", "keras")),
    ("torch", ("torch.md", "torch", "torch")),
    ("optax", ("optax.md", "optax", "optax")),
])

ROWS = [
    # -- Keras's own optimizers: the default convention, the same arguments ---------------------
    Row("keras", "defaults (learning_rate 1e-3, weight_decay 0.004, epsilon 1e-7)",
        "keras.optimizers.AdamW()",
        "optcompat.AdamW()"),
    Row("keras", "every argument",
        "keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.05, beta_1=0.8, beta_2=0.99, "
        "epsilon=1e-6, amsgrad=True)",
        "optcompat.AdamW(learning_rate=0.01, weight_decay=0.05, beta_1=0.8, beta_2=0.99, epsilon=1e-6, "
        "amsgrad=True)"),
    Row("keras", "a schedule",
        "keras.optimizers.AdamW(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.02, 10, 0.5), "
        "weight_decay=0.05)",
        "optcompat.AdamW(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.02, 10, 0.5), "
        "weight_decay=0.05)"),
    Row("keras", "no decay for biases",
        "opt = keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.05)\n"
        "opt.exclude_from_weight_decay(var_names=[\"bias\"])",
        "optcompat.AdamW(learning_rate=0.01, weight_decay=0.05, exclude_from_weight_decay=[\"bias\"])"),
    Row("keras", "SGD with momentum and weight_decay (Keras decays decoupled, scaled by the rate)",
        "keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)",
        "optcompat.SGDW(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)"),
    # -- torch.optim: convention="torch", torch's defaults spelled out ------------------------------
    Row("torch", "defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2)",
        "torch.optim.AdamW(params)",
        "optcompat.AdamW(weight_decay=1e-2, epsilon=1e-8, convention=\"torch\")"),
    Row("torch", "every argument",
        "torch.optim.AdamW(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True)",
        "optcompat.AdamW(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=0.05, "
        "amsgrad=True, convention=\"torch\")"),
    Row("torch", "parameter groups without decay",
        "torch.optim.AdamW([{\"params\": [kernel]}, {\"params\": [bias], \"weight_decay\": 0.0}], "
        "lr=0.01, weight_decay=0.05)",
        "optcompat.AdamW(learning_rate=0.01, weight_decay=0.05, epsilon=1e-8, "
        "exclude_from_weight_decay=[\"bias\"], convention=\"torch\")"),
    Row("torch", "warm restarts (the scheduler stepped once per optimizer step)",
        "opt = torch.optim.AdamW(params, lr=0.02, weight_decay=0.05)\n"
        "sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=8, T_mult=2, eta_min=0.001)",
        "optcompat.AdamW(learning_rate=optcompat.schedules.CosineDecayRestarts(0.02, 8, t_mul=2.0, "
        "alpha=0.001 / 0.02), weight_decay=0.05, epsilon=1e-8, convention=\"torch\")"),
    Row("torch", "SGD with momentum (torch's SGD decay is coupled: none here)",
        "torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True)",
        "optcompat.SGDW(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.0, "
        "convention=\"torch\")"),
    # -- optax: torch's rule (eps added to the bias-corrected root), optax's rounding of the decay --
    Row("optax", "defaults (b1 0.9, b2 0.999, eps 1e-8, weight_decay 1e-4)",
        "optax.adamw(1e-3)",
        "optcompat.AdamW(learning_rate=1e-3, weight_decay=1e-4, epsilon=1e-8, convention=\"optax\")"),
    Row("optax", "a mask: decay only the matrices",
        "optax.adamw(0.01, weight_decay=0.05, mask=lambda p: jax.tree_util.tree_map(lambda x: x.ndim > 1, p))",
        "optcompat.AdamW(learning_rate=0.01, weight_decay=0.05, epsilon=1e-8, "
        "exclude_from_weight_decay=[\"bias\"], convention=\"optax\")"),
    Row("optax", "a warm-up and cosine schedule",
        "optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 0.02, warmup_steps=8, decay_steps=40, "
        "end_value=0.002), weight_decay=0.05)",
        "optcompat.AdamW(learning_rate=optcompat.schedules.CosineDecay(0.0, 32, alpha=0.1, "
        "warmup_target=0.02, warmup_steps=8), weight_decay=0.05, epsilon=1e-8, convention=\"optax\")"),
    Row("optax", "SGD with momentum and decoupled decay",
        "optax.chain(optax.trace(decay=0.9), optax.add_decayed_weights(0.1), optax.scale(-0.05))",
        "optcompat.SGDW(learning_rate=0.05, momentum=0.9, weight_decay=0.1, convention=\"optax\")"),
]

# The "which convention?" table: who you come from -> the convention, and where the row lives
CHOICES = [
    ("Keras's AdamW / SGD (Keras 3, TF 2.11+, tf_keras)", "keras (the default)", "[Keras](keras.md)"),
    ("torch.optim.AdamW", "torch", "[torch](torch.md)"),
    ("optax.adamw, optax.sgd", "optax", "[optax](optax.md)"),
    ("TensorFlow Addons' AdamW / SGDW", "tfa (or `optcompat.tfa`, one changed import)",
     "[TensorFlow Addons](tfa.md)"),
    ("keras-adamw", "keras-adamw (or `optcompat.keras_adamw`, one changed import)", "[keras-adamw](keras-adamw.md)"),
    ("Loshchilov & Hutter, Algorithm 2", "paper", "[Conventions](../conventions.md)"),
]


# The drop-in faces: the peer's own code with its import changed and nothing else, as its users
# write it (both of TFA's import styles; keras-adamw's example.py).  ``imports`` is a list of
# (the peer's line, optcompat's); ``use`` the code after them, the same on both sides: it sets
# ``opt`` (and may read ``K``, the Keras backend).  tests/test_migration.py runs both sides where
# the peer installs (the same weights after 40 steps), optcompat's everywhere else;
# ``python ci/docs.py`` writes each as a diff into the peer's page.
Change = collections.namedtuple("Change", "peer what imports use")

CHANGES = [
    Change("tfa", "`import tensorflow_addons as tfa` (keras-io's TFA-era examples)",
           [("import tensorflow_addons as tfa", "import optcompat.tfa as tfa")],
           "opt = tfa.optimizers.AdamW(weight_decay=0.05, learning_rate=0.01)"),
    Change("tfa", "`from tensorflow_addons.optimizers import ...`",
           [("from tensorflow_addons.optimizers import SGDW", "from optcompat.tfa.optimizers import SGDW")],
           "opt = SGDW(weight_decay=0.02, learning_rate=0.05, momentum=0.9)"),
    Change("keras-adamw", "keras-adamw's `example.py`",
           [("from keras_adamw import AdamW", "from optcompat.keras_adamw import AdamW"),
            ("from keras_adamw.utils import K_eval", "from optcompat.keras_adamw.utils import K_eval")],
           "opt = AdamW(lr=0.01, use_cosine_annealing=True, total_iterations=24, init_verbose=False)\n"
           "eta_t = K_eval(opt.eta_t, K)"),
]


def one_line(peer):
    """A page's diffs: for each of ``peer``'s changes, its imports changed, its code unchanged."""
    out = []
    for c in (c for c in CHANGES if c.peer == peer):
        lines = ["-" + theirs for theirs, _ in c.imports] + ["+" + ours for _, ours in c.imports]
        out += [c.what + ":", "", "```diff"] + lines + [" " + line for line in c.use.splitlines()] + ["```", ""]
    return "\n".join(out).rstrip("\n")


def _code(text):
    return "<br>".join("`%s`" % line for line in text.splitlines())


def table(peer):
    """A page's markdown table: what, the peer's code, optcompat's."""
    out = ["| | %s | optcompat |" % PEERS[peer][1], "|---|---|---|"]
    out += ["| %s | %s | %s |" % (r.what, _code(r.theirs), _code(r.ours)) for r in ROWS if r.peer == peer]
    return "\n".join(out)


def choices():
    out = ["| you come from | `convention=` | the page |", "|---|---|---|"]
    out += ["| %s | %s | %s |" % c for c in CHOICES]
    return "\n".join(out)
