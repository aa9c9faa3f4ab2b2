"""Image classification with a Vision Transformer, as TensorFlow Addons' users wrote it.

optcompat's own port (scaled down for CI) of keras-io's example
examples/vision/image_classification_with_vision_transformer.py by Khalid Salama, in its
TensorFlow Addons era (2021-2023): TensorFlow 2.6+ names, ``import tensorflow_addons as tfa``
and ``tfa.optimizers.AdamW(learning_rate=..., weight_decay=...)``.  The model, the checkpoint
callback and the evaluation follow the example; the data are made here (CIFAR-100 is too big
for CI: 16x16 images whose class is the row band that is bright), the sizes are small and the
seeds fixed; the augmentation keeps its normalization, its resizing (Keras 3.3 on torch resizes
only with torchvision) and random flip / rotation / zoom (on JAX their compilation alone took
40 s) are left out; the weight decay is 1e-3 (the example: 1e-4) so that it shows in a few
steps.  tests/test_peer_scripts.py runs it with TFA and with its import line changed.
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

random.seed(42)
np.random.seed(42)
tf.random.set_seed(42)

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


(x_train, y_train), (x_test, y_test) = make_images(120, 0), make_images(12, 1)
print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

"""
## Configure the hyperparameters
"""

learning_rate = 0.001
weight_decay = 0.001
batch_size = 36
num_epochs = 3
image_size = 16  # the example resized its images to 72x72; here they are this size
patch_size = 4  # Size of the patches to be extracted from the input images
num_patches = (image_size // patch_size) ** 2
projection_dim = 16
num_heads = 2
transformer_units = [projection_dim * 2, projection_dim]  # Size of the transformer layers
transformer_layers = 1
mlp_head_units = [64, 32]  # Size of the dense layers of the final classifier

"""
## Use data augmentation
"""

data_augmentation = keras.Sequential(
    [
        layers.Normalization(),
        # (the example's resizing and random flip / rotation / zoom: left out, see above)
    ],
    name="data_augmentation",
)
# Compute the mean and the variance of the training data for normalization.
data_augmentation.layers[0].adapt(x_train)

"""
## Implement multilayer perceptron (MLP)
"""


def mlp(x, hidden_units, dropout_rate):
    for units in hidden_units:
        x = layers.Dense(units, activation=tf.nn.gelu)(x)
        x = layers.Dropout(dropout_rate)(x)
    return x


"""
## Implement patch creation as a layer
"""


class Patches(layers.Layer):
    def __init__(self, patch_size):
        super(Patches, self).__init__()
        self.patch_size = patch_size

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
        patches = tf.reshape(patches, [batch_size, -1, patch_dims])
        return patches


"""
## Implement the patch encoding layer
"""


class PatchEncoder(layers.Layer):
    def __init__(self, num_patches, projection_dim):
        super(PatchEncoder, self).__init__()
        self.num_patches = num_patches
        self.projection = layers.Dense(units=projection_dim)
        self.position_embedding = layers.Embedding(input_dim=num_patches, output_dim=projection_dim)

    def call(self, patch):
        positions = tf.range(start=0, limit=self.num_patches, delta=1)
        encoded = self.projection(patch) + self.position_embedding(positions)
        return encoded


"""
## Build the ViT model
"""


def create_vit_classifier():
    inputs = layers.Input(shape=input_shape)
    # Augment data.
    augmented = data_augmentation(inputs)
    # Create patches.
    patches = Patches(patch_size)(augmented)
    # Encode patches.
    encoded_patches = PatchEncoder(num_patches, projection_dim)(patches)

    # Create multiple layers of the Transformer block.
    for _ in range(transformer_layers):
        # Layer normalization 1.
        x1 = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
        # Create a multi-head attention layer.
        attention_output = layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=projection_dim, dropout=0.1
        )(x1, x1)
        # Skip connection 1.
        x2 = layers.Add()([attention_output, encoded_patches])
        # Layer normalization 2.
        x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
        # MLP.
        x3 = mlp(x3, hidden_units=transformer_units, dropout_rate=0.1)
        # Skip connection 2.
        encoded_patches = layers.Add()([x3, x2])

    # Create a [batch_size, projection_dim] tensor.
    representation = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
    representation = layers.Flatten()(representation)
    representation = layers.Dropout(0.5)(representation)
    # Add MLP.
    features = mlp(representation, hidden_units=mlp_head_units, dropout_rate=0.5)
    # Classify outputs.
    logits = layers.Dense(num_classes)(features)
    # Create the Keras model.
    model = keras.Model(inputs=inputs, outputs=logits)
    return model


"""
## Compile, train, and evaluate the model
"""


def run_experiment(model):
    optimizer = tfa.optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay
    )

    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(2, name="top-2-accuracy"),
        ],
    )

    checkpoint_filepath = "checkpoint.weights.h5"
    checkpoint_callback = keras.callbacks.ModelCheckpoint(
        checkpoint_filepath,
        monitor="val_accuracy",
        save_best_only=True,
        save_weights_only=True,
    )

    history = model.fit(
        x=x_train,
        y=y_train,
        batch_size=batch_size,
        epochs=num_epochs,
        validation_split=0.1,
        callbacks=[checkpoint_callback],
        verbose=2,
    )

    model.load_weights(checkpoint_filepath)
    test_loss, accuracy, top_2_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Test accuracy: {round(accuracy * 100, 2)}%")
    print(f"Test top 2 accuracy: {round(top_2_accuracy * 100, 2)}%")

    return history, test_loss


vit_classifier = create_vit_classifier()
history, test_loss = run_experiment(vit_classifier)
# What tests/test_peer_scripts.py compares: the losses per epoch, and the test loss.
print("history: " + json.dumps({"loss": history.history["loss"],
                                "val_loss": history.history["val_loss"],
                                "test_loss": float(test_loss)}))
