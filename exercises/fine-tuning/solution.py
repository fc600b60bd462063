"""Reference solution: train a new head on the frozen MobileNetV2, then fine-tune its top blocks gently."""

import keras
from keras import layers
from keras.applications import mobilenet_v2

FINE_TUNE_FROM = "block_13_expand"  # the last four inverted-residual blocks and the final 1x1 convolution


def compile_model(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )


def unfreeze_from(base, layer_name):
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
    x = base(x, training=False)  # BatchNormalization keeps its ImageNet statistics, also once unfrozen
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)

    # 1. the new head only: large steps are fine, the pretrained features do not move
    compile_model(model, 1e-3)
    model.fit(data.train, validation_data=data.val, epochs=4)

    # 2. the top blocks too, with steps a hundred times smaller, so the ImageNet features adapt, not vanish
    unfreeze_from(base, FINE_TUNE_FROM)
    compile_model(model, 1e-5)
    data.log(f"fine-tuning {len(model.trainable_weights)} weight tensors from {FINE_TUNE_FROM} on")
    model.fit(data.train, validation_data=data.val, epochs=4)
    return model
