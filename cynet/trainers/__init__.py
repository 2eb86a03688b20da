"""cynet.trainers: fit / evaluate / predict and the data adapters that feed them."""
from .data_adapters import (  # noqa: F401
    ArrayDataAdapter,
    DataAdapter,
    GeneratorDataAdapter,
    PyDatasetAdapter,
    class_weight_to_sample_weights,
    get_data_adapter,
    pack_x_y_sample_weight,
    train_validation_split,
    unpack_x_y_sample_weight,
)
