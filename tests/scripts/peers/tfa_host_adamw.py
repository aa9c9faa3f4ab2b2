"""``tfa.optimizers.AdamW`` written with the host Keras's own AdamW: the independent check of the
ported scripts where TensorFlow Addons cannot install (tests/test_peer_scripts.py puts
``import tfa_host_adamw as tfa`` in the script's import line).

TFA's AdamW decays ``x <- x - weight_decay * x`` before Adam's step; Keras's (Keras 3, and Keras
2.11+ / tf_keras) decays ``x <- x - learning_rate * weight_decay * x`` before it, with Adam's
step otherwise the same (epsilon outside the square root, bias corrections in the step size), so
with a constant learning rate TFA's numbers are Keras's AdamW given ``weight_decay /
learning_rate``.  No optcompat code runs in it.  ``SCRIPT_KERAS=keras`` (a Keras 3 form of a
script): Keras 3's ``keras``; else ``tensorflow.keras`` (the TF form, whatever Keras that is).
"""
import os
import types

if os.environ.get("SCRIPT_KERAS") == "keras":
    import keras
else:
    from tensorflow import keras


def AdamW(weight_decay, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07,
          amsgrad=False, name="AdamW", **kwargs):
    if callable(learning_rate) or callable(weight_decay):
        raise TypeError("tfa_host_adamw: a constant learning_rate and weight_decay only")
    return keras.optimizers.AdamW(learning_rate=learning_rate,
                                  weight_decay=weight_decay / learning_rate, beta_1=beta_1,
                                  beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad, name=name, **kwargs)


optimizers = types.SimpleNamespace(AdamW=AdamW)
