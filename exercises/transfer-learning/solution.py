"""Reference solution: a frozen ImageNet MobileNetV2, global pooling, dropout and a new sigmoid head."""

import keras
from keras import layers
from keras.applications import mobilenet_v2


def train(data):
    size = data.image_size
    base = mobilenet_v2.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    base.trainable = False

    inputs = keras.Input(shape=(size, size, 3))
    x = mobilenet_v2.preprocess_input(inputs)
    x = base(x, training=False)  # BatchNormalization keeps its ImageNet statistics
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    model.fit(data.train, validation_data=data.val, epochs=6)
    return model
