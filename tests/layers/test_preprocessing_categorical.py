"""CategoryEncoding, Hashing, IntegerLookup, StringLookup and TextVectorization.

Keras 3 runs only CategoryEncoding without TensorFlow (the others raise ImportError on the
PyTorch backend), so: CategoryEncoding is compared with Keras; Hashing with the examples of
Keras's own docstring (computed by TensorFlow) and its hashes with pyfarmhash (when installed) and
the SipHash paper's test vector; the lookups and TextVectorization with expectations worked out
by hand from Keras's IndexLookup / TextVectorization code (cited per test). Also: config round
trips, no input gradient, string models fit and predict, refused arguments."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.layers._string_hash import fingerprint64, siphash

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _round_trip(layer):
    config = layer.get_config()
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config
    return restored


# ----------------------------------------------------------------------------- CategoryEncoding
@pytest.mark.parametrize("mode", ["one_hot", "multi_hot", "count"])
def test_category_encoding_definition(mode):
    x = np.array([[1, 2, 2], [0, 0, 3]])
    y = layers.CategoryEncoding(4, output_mode=mode)(x)
    onehot = np.eye(4, dtype=np.float32)[x]
    expected = {"one_hot": onehot, "multi_hot": (onehot.sum(1) > 0).astype(np.float32), "count": onehot.sum(1)}[mode]
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(layers.CategoryEncoding(4, "one_hot")(x[:, :1]), onehot[:, 0])   # (batch, 1)
    _round_trip(layers.CategoryEncoding(4, output_mode=mode))


def test_category_encoding_count_weights_and_refusals():
    x = np.array([[1, 2, 2]])
    y = layers.CategoryEncoding(4, "count")(x, count_weights=np.array([[0.5, 1.0, 2.0]]))
    np.testing.assert_allclose(y, [[0.0, 0.5, 3.0, 0.0]])
    with pytest.raises(ValueError, match="num_tokens"):
        layers.CategoryEncoding(3)(np.array([[0, 3]]))
    with pytest.raises(ValueError, match="num_tokens"):
        layers.CategoryEncoding(3)(np.array([[-1, 0]]))
    with pytest.raises(ValueError, match="integers"):
        layers.CategoryEncoding(3)(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="2-dimensional"):
        layers.CategoryEncoding(3, "multi_hot")(np.array([0, 1]))
    with pytest.raises(ValueError, match="2-dimensional"):   # (Keras would reduce axis 1 here)
        layers.CategoryEncoding(3, "count")(np.zeros((2, 2, 3), np.int64))
    for kwargs, name in [(dict(num_tokens=None), "num_tokens"), (dict(num_tokens=0), "num_tokens"),
                         (dict(num_tokens=3, output_mode="tf_idf"), "output_mode"),
                         (dict(num_tokens=3, sparse=True), "sparse")]:
        with pytest.raises((ValueError, TypeError), match=name):
            layers.CategoryEncoding(**kwargs)


def test_category_encoding_matches_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    for mode in ("one_hot", "multi_hot", "count"):
        for x in (np.array([[1], [2], [3]]), np.array([[1, 2, 2], [0, 0, 3]])) + (
                (np.array([[[1, 2], [3, 3]]]),) if mode == "one_hot" else ()):
            ours = layers.CategoryEncoding(5, output_mode=mode)(x)
            theirs = keras.ops.convert_to_numpy(keras.layers.CategoryEncoding(5, output_mode=mode)(x))
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{mode} {x.shape}")


# ----------------------------------------------------------------------------- hashes
def test_fingerprint64_matches_farmhash():
    farmhash = pytest.importorskip("farmhash")
    rng = np.random.default_rng(0)
    for n in list(range(0, 200)) + [255, 256, 257, 1000, 4099]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert fingerprint64(data) == farmhash.fingerprint64(data), n


def test_siphash_paper_vector():
    key = (int.from_bytes(bytes(range(8)), "little"), int.from_bytes(bytes(range(8, 16)), "little"))
    assert siphash(key, bytes(range(15))) == 0xa129ca6149be45e5


def test_hashing_gives_tensorflows_bins():
    """The examples of Keras's Hashing docstring (their outputs come from TensorFlow)."""
    inp = [["A"], ["B"], ["C"], ["D"], ["E"]]
    np.testing.assert_array_equal(layers.Hashing(num_bins=3)(inp).ravel(), [1, 0, 1, 1, 2])
    np.testing.assert_array_equal(layers.Hashing(num_bins=3, mask_value="")([["A"], ["B"], [""], ["C"], ["D"]]).ravel(),
                                  [1, 1, 0, 2, 2])
    np.testing.assert_array_equal(layers.Hashing(num_bins=3, salt=[133, 137])(inp).ravel(), [1, 2, 1, 0, 2])
    np.testing.assert_array_equal(layers.Hashing(num_bins=3, salt=133)(inp).ravel(), [0, 0, 2, 1, 0])


def test_hashing_integers_modes_and_config():
    ints = np.array([[1, 22], [333, 1]])
    expected = np.array([[fingerprint64(str(v).encode()) % 5 for v in row] for row in ints.tolist()])
    y = layers.Hashing(5)(ints)
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(layers.Hashing(5, output_mode="multi_hot")(ints),
                                  layers.CategoryEncoding(5, "multi_hot")(expected))
    np.testing.assert_array_equal(layers.Hashing(5, output_mode="count")(np.array([[b"a", b"a"]])).sum(), 2)
    assert layers.Hashing(5, mask_value=22)(ints)[0, 1] == 0
    restored = _round_trip(layers.Hashing(4, salt=7, mask_value="x", output_mode="one_hot"))
    assert restored.salt == [7, 7]
    for kwargs, name in [(dict(num_bins=0), "num_bins"), (dict(num_bins=3, salt="a"), "salt"),
                         (dict(num_bins=3, salt=[1, 2, 3]), "salt"), (dict(num_bins=3, output_mode="tf_idf"),
                                                                        "output_mode"),
                         (dict(num_bins=3, mask_value=1.5), "mask_value")]:
        with pytest.raises((ValueError, TypeError), match=name):
            layers.Hashing(**kwargs)


# ----------------------------------------------------------------------------- lookups
def test_string_lookup_indices():
    """IndexLookup: [mask] (int output), OOV slots, then the vocabulary."""
    layer = layers.StringLookup(vocabulary=["a", "b", "c"])
    np.testing.assert_array_equal(layer([["a", "c", "d"], ["b", "a", "zz"]]), [[1, 3, 0], [2, 1, 0]])
    assert layer.get_vocabulary() == ["[UNK]", "a", "b", "c"] and layer.vocabulary_size() == 4
    masked = layers.StringLookup(vocabulary=["a", "b"], mask_token="", oov_token="?")
    np.testing.assert_array_equal(masked([["a", "", "q"]]), [[2, 0, 1]])
    assert masked.get_vocabulary() == ["", "?", "a", "b"]
    assert masked.get_vocabulary(include_special_tokens=False) == ["a", "b"]
    # the special tokens may start the given vocabulary
    assert layers.StringLookup(vocabulary=["", "[UNK]", "a"], mask_token="").get_vocabulary() == ["", "[UNK]", "a"]
    # several OOV slots: FarmHash of the token modulo their number
    two = layers.StringLookup(vocabulary=["a"], num_oov_indices=2)
    np.testing.assert_array_equal(two([["x", "y", "a"]]), [[fingerprint64(b"x") % 2, fingerprint64(b"y") % 2, 2]])
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        layers.StringLookup(vocabulary=["a"], num_oov_indices=0)([["b"]])


def test_lookup_output_modes():
    layer = layers.StringLookup(vocabulary=["a", "b", "c"], output_mode="multi_hot")
    np.testing.assert_array_equal(layer([["a", "c", "c"], ["x", "b", "b"]]), [[0, 1, 0, 1], [1, 0, 1, 0]])
    count = layers.StringLookup(vocabulary=["a", "b"], output_mode="count", mask_token="")
    np.testing.assert_array_equal(count([["a", "a", ""]]), [[0, 2, 0]])   # the mask counts nowhere (Keras)
    one_hot = layers.IntegerLookup(vocabulary=[5, 7], output_mode="one_hot")
    np.testing.assert_array_equal(one_hot(np.array([[7], [9]])), [[0, 0, 1], [1, 0, 0]])
    tfidf = layers.StringLookup(vocabulary=["a", "b"], idf_weights=[0.5, 0.25], output_mode="tf_idf")
    np.testing.assert_allclose(tfidf([["a", "b", "b", "q"]]), [[0.375, 0.5, 0.5]])   # [UNK] weighs the mean
    padded = layers.StringLookup(vocabulary=["a"], output_mode="multi_hot", max_tokens=4, pad_to_max_tokens=True)
    assert padded([["a"]]).shape == (1, 4)
    assert padded(cynet.Input((3,), dtype="string")).shape == (None, 4)


def test_integer_lookup_and_invert():
    layer = layers.IntegerLookup(vocabulary=[12, 36, 1138, 42])
    np.testing.assert_array_equal(layer(np.array([[12, 1138, 42], [42, 1000, 36]])), [[1, 3, 4], [4, 0, 2]])
    floormod = layers.IntegerLookup(vocabulary=[12], num_oov_indices=3, mask_token=0)
    np.testing.assert_array_equal(floormod(np.array([[0, 12, 7, 9]])), [[0, 4, 1 + 7 % 3, 1 + 9 % 3]])
    inverse = layers.IntegerLookup(vocabulary=[12, 36], invert=True)
    np.testing.assert_array_equal(inverse(np.array([[1, 2, 0, 9]])), [[12, 36, -1, -1]])
    strings = layers.StringLookup(vocabulary=["a", "b"], invert=True, mask_token="")
    assert strings(np.array([[2, 3, 0, 1, 7]])).tolist() == [["a", "b", "", "[UNK]", "[UNK]"]]


def test_adapt_orders_by_count_then_token_descending():
    """Keras: lexsort((tokens, counts))[::-1]: most frequent first, ties by the larger token."""
    layer = layers.StringLookup()
    layer.adapt(np.array(["b", "a", "c", "c", "a", "d", "[UNK]"]))
    assert layer.get_vocabulary() == ["[UNK]", "c", "a", "d", "b"]
    capped = layers.StringLookup(max_tokens=3, mask_token="")
    capped.adapt([["x", "y"], ["y", "", "z"]])
    assert capped.get_vocabulary() == ["", "[UNK]", "y"]
    ints = layers.IntegerLookup()
    ints.adapt(np.array([[3, 1], [1, 2]]))
    assert ints.get_vocabulary() == [-1, 1, 3, 2]
    batches = layers.IntegerLookup()
    batches.adapt(iter([np.array([3, 1]), np.array([1, 2])]))
    assert batches.get_vocabulary() == [-1, 1, 3, 2]
    tfidf = layers.StringLookup(output_mode="tf_idf")
    tfidf.adapt([["a", "a", "b"], ["a", "c", "c"]])
    idf = {t: np.log(1 + 2 / (1 + d)) for t, d in (("a", 2), ("c", 1), ("b", 1))}
    assert tfidf.get_vocabulary() == ["[UNK]", "a", "c", "b"]
    np.testing.assert_allclose(tfidf([["a", "c", "c"]]),
                               [[0, idf["a"], 2 * idf["c"], 0]], rtol=1e-6)
    with pytest.raises(ValueError, match="static vocabulary"):
        layers.StringLookup(vocabulary=["a"]).adapt(["a"])


def test_lookup_config_round_trips_keep_the_vocabulary():
    layer = layers.StringLookup(output_mode="tf_idf", mask_token="")
    layer.adapt([["a", "b"], ["b", "c"]])
    restored = _round_trip(layer)
    x = np.array([["a", "b", "q"]])
    np.testing.assert_allclose(restored(x), layer(x))
    _round_trip(layers.IntegerLookup(vocabulary=[3, 4], num_oov_indices=2, oov_method="farmhash", salt=5))


@pytest.mark.parametrize("cls, kwargs, name", [
    (layers.StringLookup, dict(max_tokens=1), "max_tokens"),
    (layers.StringLookup, dict(num_oov_indices=-1), "num_oov_indices"),
    (layers.StringLookup, dict(mask_token=3), "mask_token"),
    (layers.StringLookup, dict(output_mode="ints"), "output_mode"),
    (layers.StringLookup, dict(invert=True, output_mode="count"), "output_mode"),
    (layers.StringLookup, dict(pad_to_max_tokens=True), "max_tokens"),
    (layers.StringLookup, dict(idf_weights=[1.0]), "idf_weights"),
    (layers.StringLookup, dict(vocabulary=["a", "a"]), "repeated"),
    (layers.StringLookup, dict(vocabulary=["a", ""], mask_token=""), "mask token"),
    (layers.StringLookup, dict(vocabulary=["a", "b"], max_tokens=2), "max_tokens"),
    (layers.StringLookup, dict(vocabulary=[], ), "empty"),
    (layers.StringLookup, dict(sparse=True), "sparse"),
    (layers.IntegerLookup, dict(oov_token="a"), "oov_token"),
    (layers.IntegerLookup, dict(vocabulary_dtype="int32"), "vocabulary_dtype"),
    (layers.IntegerLookup, dict(salt=3), "salt"),
    (layers.IntegerLookup, dict(vocabulary=["a"]), "vocabulary"),
])
def test_lookup_bad_arguments(cls, kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        cls(**kwargs)


# ----------------------------------------------------------------------------- TextVectorization
def test_text_vectorization_int_output():
    layer = layers.TextVectorization(output_sequence_length=6)
    layer.adapt(["The cat sat.", "the Dog, the cat!", "a b"])
    # counts: the 3, cat 2, then 1 each, ties highest token first: sat, dog, b, a
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "cat", "sat", "dog", "b", "a"]
    out = layer(["the cat", "dog sat on a mat", ""])
    np.testing.assert_array_equal(out, [[2, 3, 0, 0, 0, 0], [5, 4, 1, 7, 1, 0], [0] * 6])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(layer(np.array([["x y z w v u t"]])), [[1] * 6])   # truncated
    ragged = layers.TextVectorization(vocabulary=["a", "b"])
    np.testing.assert_array_equal(ragged(["a b a", "b"]), [[2, 3, 2], [3, 0, 0]])   # padded to the longest row


def test_text_vectorization_standardize_split_ngrams():
    keep = layers.TextVectorization(standardize=None, vocabulary=["Hi!", "you"])
    np.testing.assert_array_equal(keep(["Hi! you hi"]), [[2, 3, 1]])
    lower = layers.TextVectorization(standardize="lower", vocabulary=["hi!"])
    np.testing.assert_array_equal(lower(["HI! Hi"]), [[2, 1]])
    strip = layers.TextVectorization(standardize="strip_punctuation", vocabulary=["Hi"])
    np.testing.assert_array_equal(strip(["H-i! (hi)"]), [[2, 1]])
    chars = layers.TextVectorization(split="character", vocabulary=["a", "b"], standardize=None)
    np.testing.assert_array_equal(chars(["aba c"]), [[2, 3, 2, 1, 1]])
    whole = layers.TextVectorization(split=None, vocabulary=["a b"], standardize=None)
    np.testing.assert_array_equal(whole(np.array([["a b"], ["c"]])), [[2], [1]])
    grams = layers.TextVectorization(ngrams=2, standardize=None)
    grams.adapt(["a b c"])
    assert set(grams.get_vocabulary()[2:]) == {"a", "b", "c", "a b", "b c"}
    tri = layers.TextVectorization(ngrams=(3,), standardize=None, vocabulary=["a b c"])
    np.testing.assert_array_equal(tri(["a b c d", "a b"]), [[2, 1], [0, 0]])
    custom = layers.TextVectorization(standardize=lambda x: np.char.upper(x), split=lambda x: [s.split("-") for s in x],
                                      vocabulary=["A", "B"])
    np.testing.assert_array_equal(custom(["a-b-c"]), [[2, 3, 1]])


def test_text_vectorization_vector_modes():
    layer = layers.TextVectorization(output_mode="tf_idf")
    layer.adapt(["the cat sat", "the dog"])
    vocab = layer.get_vocabulary()
    assert vocab == ["[UNK]", "the", "sat", "dog", "cat"]
    idf = np.log(1 + 2 / (1 + np.array([2, 1, 1, 1])))
    expected = np.zeros(5)
    expected[1], expected[4], expected[0] = 2 * idf[0], idf[3], idf.mean()
    np.testing.assert_allclose(layer(["the cat the zebra"])[0], expected, rtol=1e-6)
    multi = layers.TextVectorization(output_mode="multi_hot", max_tokens=6, pad_to_max_tokens=True,
                                     vocabulary=["a", "b"])
    np.testing.assert_array_equal(multi(["b b q"]), [[1, 0, 1, 0, 0, 0]])
    count = layers.TextVectorization(output_mode="count", vocabulary=["a", "b"])
    np.testing.assert_array_equal(count(["b b q", ""]), [[1, 0, 2], [0, 0, 0]])
    restored = _round_trip(layer)
    np.testing.assert_allclose(restored(["the dog"]), layer(["the dog"]))


def test_text_vectorization_bad_arguments():
    for kwargs, name in [(dict(standardize="upper"), "standardize"), (dict(split="comma"), "split"),
                         (dict(ngrams=0), "ngrams"), (dict(ngrams=(1, "a")), "ngrams"),
                         (dict(output_mode="one_hot"), "output_mode"),
                         (dict(output_mode="count", output_sequence_length=3), "output_sequence_length"),
                         (dict(output_sequence_length=0), "output_sequence_length"), (dict(ragged=True), "ragged"),
                         (dict(max_tokens=1), "max_tokens"), (dict(output_mode="tf_idf", vocabulary=["a"]),
                                                             "idf_weights")]:
        with pytest.raises((ValueError, TypeError), match=name):
            layers.TextVectorization(**kwargs)
    with pytest.raises(ValueError, match="shape"):
        layers.TextVectorization(vocabulary=["a"])(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="strings"):
        layers.TextVectorization(vocabulary=["a"])(np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="adapt"):
        layers.TextVectorization(output_mode="multi_hot")(["a"])


# ----------------------------------------------------------------------------- in models
def test_no_input_gradient():
    for layer, x in [(layers.StringLookup(vocabulary=["a"]), [["a"]]), (layers.Hashing(3), [["a"]]),
                     (layers.CategoryEncoding(3), np.array([[1.0, 2.0]])),
                     (layers.TextVectorization(vocabulary=["a"]), ["a a"])]:
        y = layer(x)
        assert layer.backward(np.ones(np.shape(y))) is None


def test_text_models_fit_and_predict():
    rng = np.random.default_rng(0)
    text = np.array(["good movie", "bad film", "good good film", "terrible bad", "great movie", "awful"])
    labels = np.array([1, 0, 1, 0, 1, 0])
    vectorize = layers.TextVectorization(max_tokens=20, output_sequence_length=4)
    vectorize.adapt(text)
    model = cynet.Sequential([cynet.Input((1,), dtype="string"), vectorize, layers.Embedding(20, 4),
                              layers.GlobalAveragePooling1D(), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(text[:, None], labels, epochs=2, verbose=0)
    assert model.predict(text[:, None], verbose=0).shape == (6, 1)
    plain = cynet.Sequential([vectorize, layers.Embedding(20, 4), layers.Flatten(), layers.Dense(1)])
    plain.compile(optimizer="sgd", loss="mse")
    plain.fit(list(text), labels, epochs=1, verbose=0)               # a list of strings, shape (batch,)
    assert plain.predict(list(text), verbose=0).shape == (6, 1)
    inp = cynet.Input((2,), dtype="string")
    ids = layers.StringLookup(vocabulary=["x", "y", "z"], output_mode="multi_hot")(inp)
    hashed = layers.Hashing(5, output_mode="count")(inp)
    out = layers.Dense(1)(layers.Concatenate()([ids, hashed]))
    functional = cynet.Model(inp, out)
    functional.compile(optimizer="sgd", loss="mse")
    x = np.array([["x", "q"], ["z", "z"], ["y", "x"]])
    functional.fit(x, rng.standard_normal((3, 1)), epochs=1, verbose=0)
    assert functional.predict(x, verbose=0).shape == (3, 1)
    ints = cynet.Sequential([cynet.Input((3,), dtype="int64"), layers.IntegerLookup(vocabulary=[5, 9]),
                             layers.CategoryEncoding(3, "count"), layers.Dense(2)])
    assert ints.predict(np.array([[5, 9, 7]]), verbose=0).shape == (1, 2)
    with pytest.raises(TypeError, match="strings|numeric"):
        model.predict(np.array([[1.5]]), verbose=0)
