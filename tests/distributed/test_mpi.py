"""Data-parallel training on 2 MPI ranks (cynet.distributed).

The MPI tests (marked `mpi`) need mpirun and mpi4py and skip without them; `.ci/run` installs
both. Run just them with `pytest -m mpi tests/distributed`. The rest checks the pieces that need
no MPI: sharding arithmetic, the launcher's command line, errors before init().
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import cynet
import cynet.distributed as dist
from cynet.distributed import run as launcher

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mpi_train.py")


def _have_mpi():
    if shutil.which("mpirun") is None:
        return False
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


mpi = pytest.mark.skipif(not _have_mpi(), reason="needs mpirun and mpi4py (pip install 'cynet[mpi]')")


def _run(args, n=None, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, SCRIPT] + args
    if n is not None:
        cmd = launcher.command(n, SCRIPT, args, mpirun=shutil.which("mpirun"))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _load(out):
    with np.load(out) as f:
        weights = [f[f"arr_{i}"] for i in range(len(f.files))]
    return weights


@pytest.mark.mpi
@mpi
@pytest.mark.parametrize("model", ["mlp", "cnn", "lstm"])
def test_two_ranks_match_one_process_with_the_global_batch(tmp_path, model):
    multi, single = str(tmp_path / "multi.npz"), str(tmp_path / "single.npz")
    done = _run(["--model", model, "--batch", "8", "--out", multi], n=2)
    assert done.returncode == 0, done.stderr[-3000:]
    ref = _run(["--model", model, "--batch", "16", "--single", "--out", single])
    assert ref.returncode == 0, ref.stderr[-3000:]
    got, want = _load(multi), _load(single)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5)
    # training really moved the weights (the comparison is not between two initialisations)
    cynet.utils.set_random_seed(3)
    sys.path.insert(0, HERE)
    try:
        import mpi_train
    finally:
        sys.path.remove(HERE)
    x, _ = mpi_train.data(model)
    init = mpi_train.model_for(model, x).get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(init, want)) > 1e-2
    # logs are reduced over ranks: both ranks saw the same history, equal to the single run's
    logs = [json.load(open(f"{multi}.rank{r}.json")) for r in (0, 1)]
    solo = json.load(open(f"{single}.rank0.json"))
    assert logs[0] == logs[1]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(logs[0]["history"][key], solo["history"][key], rtol=1e-4, atol=1e-5)
    for key in solo["evaluate"]:
        np.testing.assert_allclose(logs[0]["evaluate"][key], solo["evaluate"][key], rtol=1e-4, atol=1e-5)


@pytest.mark.mpi
@mpi
def test_only_rank_zero_prints_and_writes_checkpoints(tmp_path):
    ckpt = str(tmp_path / "ckpt.cynet")
    done = _run(["--model", "mlp", "--out", str(tmp_path / "w.npz"), "--checkpoint", ckpt, "--epochs", "2"], n=2)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Epoch 1/2") == 1 and done.stdout.count("Epoch 2/2") == 1
    loaded = cynet.models.load_model(ckpt)
    np.testing.assert_allclose(loaded.get_weights()[0], _load(str(tmp_path / "w.npz"))[0])


@pytest.mark.mpi
@mpi
def test_a_rank_that_raises_stops_the_job_quickly(tmp_path):
    ckpt = str(tmp_path / "ckpt.cynet")
    t0 = time.monotonic()
    done = _run(["--model", "mlp", "--out", str(tmp_path / "w.npz"), "--fail-rank", "1", "--checkpoint", ckpt],
                n=2, timeout=60)
    elapsed = time.monotonic() - t0
    assert done.returncode != 0
    assert elapsed < 30
    assert "deliberate failure at epoch 1" in done.stderr
    assert "rank 1 failed with RuntimeError; aborting all ranks" in done.stderr
    cynet.models.load_model(ckpt)   # the checkpoint of the completed epoch is intact


@pytest.mark.mpi
@mpi
def test_launcher_module_runs_the_script(tmp_path):
    out = str(tmp_path / "w.npz")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "cynet.distributed.run", "-n", "2", SCRIPT, "--epochs", "1",
                           "--out", out], capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(tmp_path))   # (not the checkout: `-m` would import its uncompiled cynet)
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.path.exists(out) and os.path.exists(out + ".rank1.json")


def test_shards_cover_every_global_batch_once():
    for size in (1, 2, 3, 5):
        for n in (0, 1, 4, 7, 16, 33):
            parts = []
            for r in range(size):
                helper = dist._FitHelper.__new__(dist._FitHelper)
                helper.rank, helper.size = r, size
                s = helper.shard(slice(10, 10 + n))
                parts.append(np.arange(100)[s])
                idx = helper.shard(np.arange(50, 50 + n))
                np.testing.assert_array_equal(idx, np.arange(50, 50 + n)[s.start - 10:s.stop - 10])
            np.testing.assert_array_equal(np.concatenate(parts), np.arange(10, 10 + n))
            sizes = [len(p) for p in parts]
            assert max(sizes) - min(sizes) <= 1


def test_launcher_command_line():
    cmd = launcher.command(2, "train.py", ["--epochs", "3"], mpirun="/usr/bin/mpirun")
    assert cmd[:5] == ["/usr/bin/mpirun", "-n", "2", "--bind-to", "none"]
    assert cmd[-4:] == [sys.executable, "train.py", "--epochs", "3"]
    with pytest.raises(SystemExit):
        launcher.main(["-n", "0", "train.py"])


def test_before_init_there_is_one_rank_and_wrapping_refuses():
    if dist.is_initialized():
        pytest.skip("MPI was initialised in this process")
    assert dist.rank() == 0 and dist.size() == 1
    with pytest.raises(RuntimeError, match="init"):
        dist.DistributedOptimizer("adam")
    model = cynet.Sequential([cynet.Input(shape=(3,)), cynet.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    assert dist.of(model) is None
