"""Issue 18's custom Transformer block: MultiHeadAttention and LayerNormalization (built-in layers)
around a feed-forward block written in cynet.ops, as Keras's "text classification with a
Transformer" example writes it (with token-and-position embedding). Its gradients equal central
differences in float64, and it trains."""
import numpy as np
import pytest

import cynet
from cynet import layers, ops
from cynet.testing import numerical_gradient

F64 = dict(dtype="float64")


class FeedForward(layers.Layer):
    """relu(x W1 + b1) W2 + b2, in ops."""

    def __init__(self, hidden, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        d = input_shape[-1]
        self.w1 = self.add_weight(shape=(d, self.hidden), initializer="glorot_uniform", name="w1")
        self.b1 = self.add_weight(shape=(self.hidden,), initializer="zeros", name="b1")
        self.w2 = self.add_weight(shape=(self.hidden, d), initializer="glorot_uniform", name="w2")
        self.b2 = self.add_weight(shape=(d,), initializer="zeros", name="b2")

    def call(self, x):
        return ops.matmul(ops.relu(ops.matmul(x, self.w1) + self.b1), self.w2) + self.b2


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, **kwargs):
        super().__init__(**kwargs)
        dt = self.dtype.name
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim // num_heads, dtype=dt)
        self.ffn = FeedForward(ff_dim, dtype=dt)
        self.norm1 = layers.LayerNormalization(epsilon=1e-6, dtype=dt)
        self.norm2 = layers.LayerNormalization(epsilon=1e-6, dtype=dt)

    def call(self, x):
        h = self.norm1(x + self.att(x, x))
        return self.norm2(h + self.ffn(h))


class TokenAndPosition(layers.Layer):
    def __init__(self, maxlen, vocab, dim, **kwargs):
        super().__init__(**kwargs)
        self.tokens = layers.Embedding(vocab, dim, dtype=self.dtype.name)
        self.positions = layers.Embedding(maxlen, dim, dtype=self.dtype.name)

    def call(self, x):
        return self.tokens(x) + self.positions(ops.arange(ops.shape(x)[-1]))


def test_transformer_block_gradients_match_finite_differences():
    rng = np.random.default_rng(5)
    block = TransformerBlock(8, 2, 6, **F64)
    x = rng.standard_normal((2, 4, 8))
    g = rng.standard_normal((2, 4, 8))
    block(x)
    with cynet.GradientTape() as tape:
        loss = ops.sum(block(x) * g)
    variables = block.trainable_variables
    assert len(variables) == 4 * 2 + 4 + 2 * 2   # attention (4 kernels, 4 biases), FFN (4), two norms (2 each)
    grads = tape.gradient(loss, variables + [x])
    for v, grad in zip(variables, grads[:-1]):
        num = numerical_gradient(lambda: float(np.sum(block(x) * g)), v.value)
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8, err_msg=v.path)
    np.testing.assert_allclose(grads[-1], numerical_gradient(lambda: float(np.sum(block(x) * g)), x),
                               rtol=1e-5, atol=1e-8)


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_transformer_classifier_trains():
    rng = np.random.default_rng(0)
    maxlen, vocab = 10, 30
    x = rng.integers(1, vocab, (128, maxlen))
    y = (x[:, :3].sum(axis=1) > 1.5 * vocab).astype("int64")     # depends on the first tokens
    inputs = cynet.Input((maxlen,), dtype="int32")
    h = TokenAndPosition(maxlen, vocab, 16)(inputs)
    h = TransformerBlock(16, 2, 32)(h)
    h = layers.GlobalAveragePooling1D()(h)
    outputs = layers.Dense(2, activation="softmax")(layers.Dense(16, activation="relu")(h))
    model = cynet.Model(inputs, outputs)
    model.compile(cynet.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=15, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["accuracy"][-1] > 0.8
