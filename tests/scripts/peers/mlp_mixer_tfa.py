"""Image classification with the MLP-Mixer, as TensorFlow Addons' users wrote it.

optcompat's own port (scaled down for CI) of the MLP-Mixer part of keras-io's example
examples/vision/mlp_image_classification.py ("Image classification with modern MLP models") by
Khalid Salama, in its TensorFlow Addons era (2021-2023): TensorFlow 2.6+ names,
``import tensorflow_addons as tfa`` and ``tfa.optimizers.AdamW(learning_rate=...,
weight_decay=...)``, with its ReduceLROnPlateau and EarlyStopping callbacks.  One change of
substance: the example's activation layer was ``tfa.layers.GELU()``, which optcompat.tfa does not
provide (it is TFA's optimizers only); here it is core TensorFlow's ``tf.nn.gelu`` (TF 2.4+, to
which TFA itself pointed when it deprecated its GELU).  The data are made here (CIFAR-100 is too
big for CI: 16x16 images whose class is the row band that is bright), the sizes are small and the
seeds fixed; the augmentation keeps its normalization, its resizing (Keras 3.3 on torch resizes
only with torchvision) and random flip / zoom (on JAX their compilation alone took 40 s) are
left out; the weight decay is 1e-3 (the example: 1e-4) so that it shows in a few steps.
tests/test_peer_scripts.py runs it with TFA and with its import line changed.
"""
# The imports as keras-io's example orders them (TFA's last): not sorted for ruff.
# ruff: noqa: I001
import json
import random

import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers
import tensorflow_addons as tfa

random.seed(7)
np.random.seed(7)
tf.random.set_seed(7)

"""
## Prepare the data
"""

num_classes = 4
input_shape = (16, 16, 3)


def make_images(count, seed):
    """Noise, with the row band of the image's class bright."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, num_classes, size=(count, 1))
    images = rng.uniform(0.0, 96.0, size=(count,) + input_shape)
    band = input_shape[0] // num_classes
    for image, label in zip(images, labels[:, 0]):
        image[band * label:band * (label + 1)] += 128.0
    return images.astype("float32"), labels


(x_train, y_train), (x_test, y_test) = make_images(120, 2), make_images(12, 3)
print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

"""
## Configure the hyperparameters
"""

weight_decay = 0.001
batch_size = 36
num_epochs = 3
dropout_rate = 0.2
image_size = 16  # the example resized its images to 72x72; here they are this size
patch_size = 4  # Size of the patches to be extracted from the input images.
num_patches = (image_size // patch_size) ** 2  # Size of the data array.
embedding_dim = 32  # Number of hidden units.
num_blocks = 2  # Number of blocks.

"""
## Build a classification model
"""


def build_classifier(blocks, positional_encoding=False):
    inputs = layers.Input(shape=input_shape)
    # Augment data.
    augmented = data_augmentation(inputs)
    # Create patches.
    patches = Patches(patch_size, num_patches)(augmented)
    # Encode patches to generate a [batch_size, num_patches, embedding_dim] tensor.
    x = layers.Dense(units=embedding_dim)(patches)
    if positional_encoding:
        positions = tf.range(start=0, limit=num_patches, delta=1)
        position_embedding = layers.Embedding(
            input_dim=num_patches, output_dim=embedding_dim
        )(positions)
        x = x + position_embedding
    # Process x using the module blocks.
    x = blocks(x)
    # Apply global average pooling to generate a [batch_size, embedding_dim] representation tensor.
    representation = layers.GlobalAveragePooling1D()(x)
    # Apply dropout.
    representation = layers.Dropout(rate=dropout_rate)(representation)
    # Compute logits outputs.
    logits = layers.Dense(num_classes)(representation)
    # Create the Keras model.
    return keras.Model(inputs=inputs, outputs=logits)


"""
## Define an experiment
"""


def run_experiment(model):
    # Create Adam optimizer with weight decay.
    optimizer = tfa.optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay,
    )
    # Compile the model.
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="acc"),
            keras.metrics.SparseTopKCategoricalAccuracy(2, name="top2-acc"),
        ],
    )
    # Create a learning rate scheduler callback.
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=5)
    # Create an early stopping callback.
    early_stopping = tf.keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=10, restore_best_weights=True
    )
    # Fit the model.
    history = model.fit(
        x=x_train,
        y=y_train,
        batch_size=batch_size,
        epochs=num_epochs,
        validation_split=0.1,
        callbacks=[early_stopping, reduce_lr],
        verbose=2,
    )

    test_loss, accuracy, top_2_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Test accuracy: {round(accuracy * 100, 2)}%")
    print(f"Test top 2 accuracy: {round(top_2_accuracy * 100, 2)}%")

    # Return history to plot learning curves.
    return history, test_loss


"""
## Use data augmentation
"""

data_augmentation = keras.Sequential(
    [
        layers.Normalization(),
        # (the example's resizing and random flip / zoom: left out, see above)
    ],
    name="data_augmentation",
)
# Compute the mean and the variance of the training data for normalization.
data_augmentation.layers[0].adapt(x_train)

"""
## Implement patch extraction as a layer
"""


class Patches(layers.Layer):
    def __init__(self, patch_size, num_patches):
        super(Patches, self).__init__()
        self.patch_size = patch_size
        self.num_patches = num_patches

    def call(self, images):
        batch_size = tf.shape(images)[0]
        patches = tf.image.extract_patches(
            images=images,
            sizes=[1, self.patch_size, self.patch_size, 1],
            strides=[1, self.patch_size, self.patch_size, 1],
            rates=[1, 1, 1, 1],
            padding="VALID",
        )
        patch_dims = patches.shape[-1]
        patches = tf.reshape(patches, [batch_size, self.num_patches, patch_dims])
        return patches


"""
## The MLP-Mixer model
"""


class MLPMixerLayer(layers.Layer):
    def __init__(self, num_patches, hidden_units, dropout_rate, *args, **kwargs):
        super(MLPMixerLayer, self).__init__(*args, **kwargs)

        self.mlp1 = keras.Sequential(
            [
                layers.Dense(units=num_patches),
                layers.Activation(tf.nn.gelu),  # the example: tfa.layers.GELU()
                layers.Dense(units=num_patches),
                layers.Dropout(rate=dropout_rate),
            ]
        )
        self.mlp2 = keras.Sequential(
            [
                layers.Dense(units=num_patches),
                layers.Activation(tf.nn.gelu),  # the example: tfa.layers.GELU()
                layers.Dense(units=hidden_units),
                layers.Dropout(rate=dropout_rate),
            ]
        )
        self.normalize = layers.LayerNormalization(epsilon=1e-6)

    def call(self, inputs):
        # Apply layer normalization.
        x = self.normalize(inputs)
        # Transpose inputs from [num_batches, num_patches, hidden_units]
        # to [num_batches, hidden_units, num_patches].
        x_channels = tf.linalg.matrix_transpose(x)
        # Apply mlp1 on each channel independently.
        mlp1_outputs = self.mlp1(x_channels)
        # Transpose mlp1_outputs from [num_batches, hidden_dim, num_patches]
        # to [num_batches, num_patches, hidden_units].
        mlp1_outputs = tf.linalg.matrix_transpose(mlp1_outputs)
        # Add skip connection.
        x = mlp1_outputs + inputs
        # Apply layer normalization.
        x_patches = self.normalize(x)
        # Apply mlp2 on each patch independtenly.
        mlp2_outputs = self.mlp2(x_patches)
        # Add skip connection.
        x = x + mlp2_outputs
        return x


"""
## Build, train, and evaluate the MLP-Mixer model
"""

mlpmixer_blocks = keras.Sequential(
    [MLPMixerLayer(num_patches, embedding_dim, dropout_rate) for _ in range(num_blocks)]
)
learning_rate = 0.005
mlpmixer_classifier = build_classifier(mlpmixer_blocks)
history, test_loss = run_experiment(mlpmixer_classifier)
# What tests/test_peer_scripts.py compares: the losses per epoch, and the test loss.
print("history: " + json.dumps({"loss": history.history["loss"],
                                "val_loss": history.history["val_loss"],
                                "test_loss": float(test_loss)}))
