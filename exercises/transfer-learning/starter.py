"""Starter: a frozen MobileNetV2 with a new head. It runs as it is; then follow the README."""

import keras
from keras import layers
from keras.applications import mobilenet_v2

WEIGHTS = "imagenet"  # try None: the same network, but it has learnt nothing


def train(data):
    size = data.image_size
    base = mobilenet_v2.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=WEIGHTS)
    base.trainable = False  # keep what ImageNet taught it

    inputs = keras.Input(shape=(size, size, 3))
    x = mobilenet_v2.preprocess_input(inputs)  # pixels 0..255 -> -1..1, as during its ImageNet training
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)

    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    model.fit(data.train, validation_data=data.val, epochs=2)
    return model
