"""Whose numbers to reproduce: the weight-decay conventions, as data.

Each convention is the update rule of a peer that users migrate from.  They differ in
four places only, so a convention is four choices, not a copy of the optimizer:

``decay``
    What multiplies ``weight_decay * x`` (``x`` the weight before the step):
    ``"lr"`` -- the current learning rate ``lr_t`` (Keras, torch);
    ``"one"`` -- nothing, the decay is not scaled (TensorFlow Addons);
    ``"schedule"`` -- the schedule multiplier ``eta_t = lr_t / lr_0`` (Loshchilov & Hutter,
    keras-adamw: its cosine annealing multiplier is ``eta_t`` when the annealing is given
    as the learning-rate schedule).
``epsilon``
    Where Adam's epsilon sits: ``"outside"`` the bias correction,
    ``m / (sqrt(v) + eps)`` scaled by ``lr_t sqrt(1-b2^t) / (1-b1^t)`` (Keras, TFA,
    keras-adamw);
    ``"inside"``, ``mhat / (sqrt(vhat) + eps)`` (torch, the paper).
``momentum``
    SGD's momentum buffer: ``"keras"`` -- ``u = mu u - lr_t g; x += u``;
    ``"torch"`` -- ``b = mu b + g; x -= lr_t b``.
``decay_form``
    How the decay is rounded in float32, as the peer does it: ``"subtract"``,
    ``x - x d`` (Keras on tensorflow/jax, TFA); ``"scale"``, ``x (1 - d)`` (torch.optim);
    ``"combined"``, ``x + (delta - x d)`` with the step's change ``delta`` (optax: its update
    ``-lr (u + wd x)`` is one sum added to ``x``).  Equal in exact arithmetic; the peer's
    form keeps optcompat within float32 rounding of the peer over long runs.  With a small
    ``d`` they part: at optax's defaults (``d = lr wd = 1e-7``) float32's ``1 - d`` is
    ``1 - 1.19e-7`` and ``x - x d`` rounds ``x d`` (about one ulp of ``x``) away or up on
    its own every step; over 40 steps each lands 2.4e-6 from the other (measured).
"""

from collections import namedtuple

Convention = namedtuple("Convention", "name decay epsilon momentum decay_form peer")

CONVENTIONS = {
    c.name: c
    for c in (
        Convention(
            "keras",
            "lr",
            "outside",
            "keras",
            "subtract",
            "keras.optimizers.AdamW / SGD",
        ),
        Convention(
            "torch", "lr", "inside", "torch", "scale", "torch.optim.AdamW / SGD"
        ),
        # optax.adamw: torch's rule, the decay added to the update (x - lr (step + wd x))
        Convention(
            "optax",
            "lr",
            "inside",
            "torch",
            "combined",
            "optax.adamw / optax.sgd + add_decayed_weights",
        ),
        Convention(
            "tfa",
            "one",
            "outside",
            "keras",
            "subtract",
            "tensorflow_addons.optimizers.AdamW / SGDW",
        ),
        Convention(
            "paper",
            "schedule",
            "inside",
            "keras",
            "subtract",
            "Loshchilov & Hutter 2019 (Algorithm 2)",
        ),
        # keras-adamw is the paper's schedule multiplier with Keras's epsilon (TF_KERAS=1 code)
        Convention(
            "keras-adamw",
            "schedule",
            "outside",
            "keras",
            "subtract",
            "keras-adamw AdamW / SGDW",
        ),
    )
}
DEFAULT = "keras"
