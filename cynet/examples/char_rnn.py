"""Character-level language model: Embedding -> SimpleRNN / LSTM / GRU (many-to-many over windows
of --seq-length characters) -> Dense softmax over the vocabulary, then sampled text.

    python -m cynet.examples.char_rnn --cell lstm                       # rnn_wiki.txt, memorised
    python -m cynet.examples.char_rnn --cell lstm --text tinyshakespeare.txt --units 256 \\
        --epochs 3 --max-chars 300000 --validation-split 0.1
"""
import os

import numpy as np

import cynet
from cynet import layers
from cynet.datasets import text as textdata

from . import _common

CELLS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}


def build_model(cell, vocab_size, seq_length, units, embedding_dim):
    return cynet.Sequential([
        cynet.Input(shape=(seq_length,)),
        layers.Embedding(vocab_size, embedding_dim),
        CELLS[cell](units, return_sequences=True),
        layers.Dense(vocab_size, activation="softmax"),
    ], name=f"char_{cell}")


def main(argv=None):
    p = _common.parser("char_rnn", __doc__, epochs=20, batch_size=32)
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent layer")
    p.add_argument("--text", default="rnn_wiki.txt",
                   help="a text file: a path, or a file name under $CYNET_DATA_DIR/text")
    p.add_argument("--seq-length", type=int, default=60, help="characters per training window")
    p.add_argument("--step", type=int, default=None,
                   help="characters between window starts (default: 1 for small texts, seq-length for large)")
    p.add_argument("--max-chars", type=int, default=None, help="use only the first N characters of the text")
    p.add_argument("--units", type=int, default=128, help="recurrent units")
    p.add_argument("--embedding-dim", type=int, default=32, help="embedding size per character")
    p.add_argument("--learning-rate", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--validation-split", type=float, default=0.0, help="fraction of windows held out (the last)")
    p.add_argument("--sample-length", type=int, default=200, help="characters to generate after training")
    p.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (0: always the argmax)")
    args = _common.setup(p.parse_args(argv), argv)

    path = args.text if os.path.exists(args.text) else textdata.find_text_file(args.text)
    corpus = textdata.load_text(path)
    if args.max_chars:
        corpus = corpus[:args.max_chars]
    vocab = textdata.CharVocabulary.from_text(corpus)
    step = args.step or (1 if len(corpus) < 100_000 else args.seq_length)
    x, y = textdata.char_windows(vocab.encode(corpus), args.seq_length, step=step, many_to_many=True)
    if args.smoke:
        x, y = x[:2 * args.batch_size], y[:2 * args.batch_size]
    print(f"{os.path.basename(path)}: {len(corpus):,} characters, vocabulary {vocab.size}, "
          f"{len(x):,} windows of {args.seq_length}")

    model = build_model(args.cell, vocab.size, args.seq_length, args.units, args.embedding_dim)
    model.compile(optimizer=cynet.optimizers.Adam(learning_rate=args.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _common.EpochTimer()
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer],
                        validation_split=args.validation_split, verbose=args.verbose)
    results = {name: values[-1] for name, values in history.history.items()}
    _common.report(f"char_rnn ({args.cell})", results, timer, args, history)
    seed_text = corpus[:args.seq_length]
    generated = textdata.sample(model, vocab, seed_text, length=args.sample_length if not args.smoke else 10,
                                temperature=args.temperature, rng=np.random.default_rng(args.seed))
    print(f"--- sampled at temperature {args.temperature} after {seed_text!r} ---\n{generated}")
    return results


if __name__ == "__main__":
    main()
