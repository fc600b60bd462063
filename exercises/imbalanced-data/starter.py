"""Starter: count the classes, compare accuracy with ROC AUC. It runs as it is; then follow the README."""

import keras
import numpy as np
from keras import layers
from keras.applications import mobilenet_v2


def count_classes(data):
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in data.train])
    counts = np.bincount(labels.astype(int), minlength=2)
    for name, count in zip(data.class_names, counts, strict=True):
        data.log(f"{name}: {count} training images ({count / len(labels):.0%})")
    data.log(f"a model that always says 'benign' is right {counts[0] / len(labels):.0%} of the time")
    return counts


def train(data):
    count_classes(data)
    size = data.image_size
    base = mobilenet_v2.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = mobilenet_v2.preprocess_input(inputs)
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        # watch both on your submission page: which one tells you more?
        metrics=["accuracy", keras.metrics.AUC(name="auc"), keras.metrics.Recall(name="sensitivity")],
    )
    model.fit(data.train, validation_data=data.val, epochs=3)
    return model
