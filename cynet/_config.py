"""Process-wide defaults (keras.config): the float type of new layers, the fuzz factor, the image
layout. cynet.config and cynet.backend read and set them; nothing else holds them."""

_settings = {"floatx": "float32", "epsilon": 1e-7, "image_data_format": "channels_last",
             "dtype_policy": None}   # None: DTypePolicy(floatx) (cynet.dtype_policies)


def get(name):
    return _settings[name]


def set_value(name, value):
    _settings[name] = value
