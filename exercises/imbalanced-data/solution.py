"""Reference solution: balanced class weights and augmentation layers on a frozen ImageNet MobileNetV2."""

import keras
import numpy as np
from keras import layers
from keras.applications import mobilenet_v2


def balanced_class_weights(data):
    """Weights that give both classes the same total say in the loss: n / (2 * n_class)."""
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in data.train]).astype(int)
    counts = np.bincount(labels, minlength=2)
    weights = {label: len(labels) / (2 * count) for label, count in enumerate(counts)}
    data.log(f"class counts {counts.tolist()}, class weights {weights}")
    return weights


def augmentation():
    """Lesions have no up, down, left or right: any flip or rotation is another plausible image."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal_and_vertical"),
            layers.RandomRotation(0.5, fill_mode="reflect"),
            layers.RandomZoom(0.1, fill_mode="reflect"),
            layers.RandomContrast(0.1),
        ],
        name="augmentation",
    )


def train(data):
    size = data.image_size
    base = mobilenet_v2.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = augmentation()(inputs)  # active while training only; predictions see the real image
    x = mobilenet_v2.preprocess_input(x)
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc"), keras.metrics.Recall(name="sensitivity")],
    )
    model.fit(data.train, validation_data=data.val, epochs=8, class_weight=balanced_class_weights(data))
    return model
