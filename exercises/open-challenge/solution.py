"""Reference solution: an ensemble of a fine-tuned MobileNetV2 and a frozen EfficientNetB0, with augmentation.

Each member is trained on its own, with balanced class weights; the returned model averages their
probabilities. The second member is only trained when the clock says there is time for it.
"""

import time

import keras
import numpy as np
from keras import applications, layers


def balanced_class_weights(data):
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in data.train]).astype(int)
    counts = np.bincount(labels, minlength=2)
    return {label: len(labels) / (2 * count) for label, count in enumerate(counts)}


def augmentation():
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal_and_vertical"),
            layers.RandomRotation(0.5, fill_mode="reflect"),
            layers.RandomZoom(0.1, fill_mode="reflect"),
        ],
        name="augmentation",
    )


def member(base, preprocess_input, size, name):
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = preprocess_input(augmentation()(inputs))
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name=name)


def fit(model, data, learning_rate, epochs, class_weight):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    callbacks = [keras.callbacks.EarlyStopping("val_auc", mode="max", patience=2, restore_best_weights=True)]
    model.fit(data.train, validation_data=data.val, epochs=epochs, class_weight=class_weight, callbacks=callbacks)


def train(data):
    size = data.image_size
    class_weight = balanced_class_weights(data)
    started = time.monotonic()

    mobilenet = applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    first = member(mobilenet, applications.mobilenet_v2.preprocess_input, size, "mobilenet_v2")
    fit(first, data, 1e-3, 5, class_weight)
    mobilenet.trainable = True
    start = [layer.name for layer in mobilenet.layers].index("block_13_expand")
    for index, layer in enumerate(mobilenet.layers):
        layer.trainable = index >= start
    fit(first, data, 1e-5, 3, class_weight)

    used = time.monotonic() - started
    if data.seconds_left() < used:  # the second member costs about as much again: not enough time
        data.log(f"{data.seconds_left():.0f} s left after {used:.0f} s: returning the first member alone")
        return first
    efficientnet = applications.EfficientNetB0(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    second = member(efficientnet, applications.efficientnet.preprocess_input, size, "efficientnet_b0")
    fit(second, data, 1e-3, 4, class_weight)

    inputs = keras.Input(shape=(size, size, 3))
    outputs = layers.Average()([first(inputs), second(inputs)])
    return keras.Model(inputs, outputs, name="ensemble")
