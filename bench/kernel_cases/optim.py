"""Cases of cynet.kernels.optim: the fused in-place optimizer updates."""
import numpy as np

import cynet.kernels as K

from . import case, normal, thunks

# The leak check: the variables' sizes; the large one is split among 2 threads.
LEAK, LEAK_LARGE = (dict(n=1000),), (dict(n=140_000),)


@case("adam_update", "sgd_momentum_update", "adamax_update", "lion_update", "ftrl_update")
def _optim(dt, rng, large):
    def bind(n):
        w, w2, w3 = (normal(rng, (n,), dt) for _ in range(3))
        g = normal(rng, (n,), dt, 1e-3)
        m, v, v_hat, mom, mom2, m3, u3, m4 = (np.zeros(n, dt) for _ in range(8))
        w4, w5, w6 = normal(rng, (n,), dt), normal(rng, (n,), dt), normal(rng, (n,), dt)
        acc, lin = np.full(n, 0.1, dt), np.zeros(n, dt)
        return [lambda: K.adam_update(w, g, m, v, 1e-4, 0.1, 0.001, 1e-7),
                lambda: K.adamax_update(w4, g, m3, u3, 1e-4, 0.1, 0.999, 0.1, 1e-7),
                lambda: K.lion_update(w5, g, m4, 1e-4, 0.9, 0.1, 0.99, 0.01),
                lambda: K.ftrl_update(w6, g, acc, lin, 1e-3, 0.5, 1e-3, 0.0, 0.0),
                lambda: K.adam_update(w2, g, m, v, 1e-4, 0.1, 0.001, 1e-7, v_hat=v_hat),
                lambda: K.sgd_momentum_update(w3, g, mom, 1e-4, 0.9),
                lambda: K.sgd_momentum_update(w3, g, mom2, 1e-4, 0.9, nesterov=True)]

    return thunks(bind, LEAK_LARGE if large else LEAK)
