"""Runnable examples: `cynet-examples NAME [options]` (or `python -m cynet.examples NAME`).

quickstart     small CNN on scikit-learn's 8x8 digits (offline, under a minute)
mnist_mlp      784-400-400-400-10 MLP, leaky ReLU, dropout 0.2, Adam
mnist_cnn      conv 6x6/2, avg pool, conv 3x3/2, avg pool, dense 100, batch norm, softmax
mnist_convnet  the classic Keras convnet (conv 32, pool, conv 64, pool, dropout 0.5, softmax)
char_rnn       character-level SimpleRNN / LSTM / GRU, many-to-many, with sampled text
tabular        dense networks on breast cancer and wine (MSE and cross-entropy, SGD and Adam)
manual_loop    the MLP trained by a hand-written forward / backward / apply_gradients loop

Every example takes --backend {cython,numpy}, --epochs, --batch-size, --seed, --threads,
--plot PATH, --results PATH (its metrics as one JSON line) and --smoke (a few batches, for the
test suite), and prints its final metrics and the time per epoch; `cynet-examples NAME --help`
lists its own options.
"""
