"""Starter: the frozen MobileNetV2 of exercise 2, with a fine-tuning step ready to switch on."""

import keras
from keras import layers
from keras.applications import mobilenet_v2

FINE_TUNE_FROM = None  # e.g. "block_13_expand": unfreeze this layer and everything after it


def compile_model(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )


def unfreeze_from(base, layer_name):
    """Make ``layer_name`` and every layer after it trainable; the layers before it stay frozen."""
    base.trainable = True
    start = [layer.name for layer in base.layers].index(layer_name)
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= start


def train(data):
    size = data.image_size
    base = mobilenet_v2.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = mobilenet_v2.preprocess_input(inputs)
    x = base(x, training=False)  # BatchNormalization stays in inference mode, even once unfrozen
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)

    # step 1: train the new head on top of the frozen network
    compile_model(model, 1e-3)
    model.fit(data.train, validation_data=data.val, epochs=3)

    # step 2: fine-tune the top of the network (switched off until FINE_TUNE_FROM names a layer)
    if FINE_TUNE_FROM is not None:
        unfreeze_from(base, FINE_TUNE_FROM)
        compile_model(model, 1e-3)  # compile again after changing `trainable`; is this learning rate wise?
        model.fit(data.train, validation_data=data.val, epochs=3)
    return model
