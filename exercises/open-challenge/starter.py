"""Starter: one pretrained network from a table, trained while time allows. Make it the best model you can."""

import time

import keras
from keras import applications, layers

# name -> (constructor, its own preprocess_input); the weights of all three are on the server
NETWORKS = {
    "MobileNetV2": (applications.MobileNetV2, applications.mobilenet_v2.preprocess_input),
    "MobileNetV3Small": (applications.MobileNetV3Small, applications.mobilenet_v3.preprocess_input),
    "EfficientNetB0": (applications.EfficientNetB0, applications.efficientnet.preprocess_input),
}


def pretrained_model(name, size):
    constructor, preprocess_input = NETWORKS[name]
    base = constructor(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = base(preprocess_input(inputs), training=False)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name=name)


def train(data):
    model = pretrained_model("MobileNetV3Small", data.image_size)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    started = time.monotonic()
    model.fit(data.train, validation_data=data.val, epochs=1)
    epoch_seconds = time.monotonic() - started
    more = min(4, int(data.seconds_left() / epoch_seconds) - 1)  # keep one epoch's time in hand
    data.log(f"one epoch took {epoch_seconds:.1f} s; {data.seconds_left():.0f} s left: {max(more, 0)} more epochs")
    if more > 0:
        model.fit(data.train, validation_data=data.val, epochs=more)
    return model
