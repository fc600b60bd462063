"""Reference solution: four convolution blocks with batch normalisation, pooling, dropout; the best of 10 epochs."""

import keras
from keras import layers


def conv_block(filters):
    return [
        layers.Conv2D(filters, 3, padding="same", use_bias=False),
        layers.BatchNormalization(momentum=0.9),  # its statistics settle within a few hundred steps
        layers.Activation("relu"),
        layers.MaxPooling2D(),
    ]


def train(data):
    size = data.image_size
    model = keras.Sequential(
        [
            keras.Input(shape=(size, size, 3)),
            layers.Rescaling(1 / 255),
            *conv_block(16),
            *conv_block(32),
            *conv_block(64),
            *conv_block(128),
            layers.GlobalAveragePooling2D(),
            layers.Dropout(0.3),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    keep_best = keras.callbacks.EarlyStopping("val_auc", mode="max", patience=4, restore_best_weights=True)
    model.fit(data.train, validation_data=data.val, epochs=10, callbacks=[keep_best])
    return model
