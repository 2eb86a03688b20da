"""Cases of cynet.kernels.optim: the fused in-place optimizer updates."""
import numpy as np

import cynet.kernels as K

from . import case, normal, thunks

# The leak check: the variables' sizes; the large one is split among 2 threads.
LEAK, LEAK_LARGE = (dict(n=1000),), (dict(n=140_000),)


@case("adam_update", "sgd_momentum_update")
def _optim(dt, rng, large):
    def bind(n):
        w, w2, w3 = (normal(rng, (n,), dt) for _ in range(3))
        g = normal(rng, (n,), dt, 1e-3)
        m, v, v_hat, mom, mom2 = (np.zeros(n, dt) for _ in range(5))
        return [lambda: K.adam_update(w, g, m, v, 1e-4, 0.1, 0.001, 1e-7),
                lambda: K.adam_update(w2, g, m, v, 1e-4, 0.1, 0.001, 1e-7, v_hat=v_hat),
                lambda: K.sgd_momentum_update(w3, g, mom, 1e-4, 0.9),
                lambda: K.sgd_momentum_update(w3, g, mom2, 1e-4, 0.9, nesterov=True)]

    return thunks(bind, LEAK_LARGE if large else LEAK)
