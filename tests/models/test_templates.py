"""cynet.models.template: a compiled Sequential in one line, each choice overridable by keyword;
unknown templates and options refused with messages listing the known ones."""
import numpy as np
import pytest

import cynet
from cynet import layers


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_basic_template_defaults():
    model = cynet.models.template("basic", [1000, 128, 128, 10])
    assert isinstance(model, cynet.Sequential) and model.compiled
    assert _kinds(model) == ["Dense", "Dense", "Dense"]
    assert [layer.units for layer in model.layers] == [128, 128, 10]
    config = [layer.get_config() for layer in model.layers]
    assert [c["activation"] for c in config] == ["relu", "relu", "softmax"]
    assert model.input_shape == (None, 1000) and model.output_shape == (None, 10)
    assert type(model.optimizer).__name__ == "Adam"
    assert type(model.loss).__name__ == "CategoricalCrossentropy"


def test_basic_template_trains():
    cynet.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 20)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    model = cynet.models.template("basic", [20, 16, 2], learning_rate=0.01)
    history = model.fit(x, cynet.utils.to_categorical(y, 2), epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8
    assert model.predict(x[:3], verbose=0).shape == (3, 2)


def test_overrides():
    model = cynet.models.template("basic", [(4, 4), 8, 6, 3], activation="tanh", output_activation=None,
                                  dropout=0.25, optimizer="sgd", learning_rate=0.05,
                                  loss=cynet.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=[],
                                  kernel_initializer="zeros",
                                  kernel_regularizer="l2", name="mlp")
    assert _kinds(model) == ["Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    assert [cynet.activations.serialize(d.activation) for d in dense] == ["tanh", "tanh", "linear"]
    assert all(d.kernel_initializer == "zeros" and d.kernel_regularizer == "l2" for d in dense)
    assert all(np.count_nonzero(w) == 0 for w in model.get_weights()[::2])   # zeros kernels
    assert [layer.rate for layer in model.layers if isinstance(layer, layers.Dropout)] == [0.25, 0.25]
    assert model.name == "mlp" and type(model.optimizer).__name__ == "SGD"
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    assert type(model.loss).__name__ == "SparseCategoricalCrossentropy"
    model.fit(np.zeros((4, 4, 4)), np.array([0, 1, 2, 0]), epochs=1, verbose=0)


def test_optimizer_object_and_no_hidden_layer():
    optimizer = cynet.optimizers.RMSprop(learning_rate=0.01)
    model = cynet.models.template("basic", [5, 2], optimizer=optimizer)
    assert model.optimizer is optimizer and _kinds(model) == ["Dense"]


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(ValueError, match="known templates are: basic"):
        cynet.models.template("resnet", [10, 2])
    with pytest.raises(ValueError, match="known templates"):
        cynet.models.template(None, [10, 2])


def test_unknown_option_lists_the_options():
    with pytest.raises(TypeError, match="'units'.*activation, output_activation, dropout"):
        cynet.models.template("basic", [10, 2], units=3)


@pytest.mark.parametrize("sizes, name", [
    ([10], "sizes"), (10, "sizes"), ("10, 2", "sizes"), ([10, 0], r"sizes\[1\]"), ([0, 2], r"sizes\[0\]"),
    ([10, 2.5], r"sizes\[1\]"), ([(), 2], "sizes"), ([10, True], r"sizes\[1\]"),
])
def test_bad_sizes(sizes, name):
    with pytest.raises(ValueError, match=name):
        cynet.models.template("basic", sizes)


@pytest.mark.parametrize("overrides, name", [
    (dict(dropout=1.0), "dropout"), (dict(dropout="a"), "dropout"), (dict(activation="nope"), "activation"),
    (dict(optimizer="nope"), "nope"), (dict(learning_rate=0.1, optimizer=cynet.optimizers.SGD()), "learning_rate"),
])
def test_bad_overrides(overrides, name):
    with pytest.raises((ValueError, TypeError), match=name):
        cynet.models.template("basic", [10, 4, 2], **overrides)
