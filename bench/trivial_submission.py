"""The trivial submission the benchmarks grade: the cost of the machinery, not of training."""

import keras


def train(data):
    size = data.image_size
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(inputs))
    return keras.Model(inputs, outputs)
