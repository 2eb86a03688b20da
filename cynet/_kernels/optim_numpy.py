"""Optimizer update kernels, NumPy twin of optim.pyx (same names, signatures and results).

Every operation but the first of each group writes into an existing array (ufuncs with out=).
"""
import numpy as np


def adam_update(variable, gradient, m, v, v_hat, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    """One Adam step in place on variable, m, v (and v_hat for AMSGrad, else None)."""
    s = np.subtract(gradient, m)
    np.multiply(s, one_minus_beta_1, out=s)
    np.add(m, s, out=m)                    # m += (g - m) * (1 - beta_1)
    np.square(gradient, out=s)
    np.subtract(s, v, out=s)
    np.multiply(s, one_minus_beta_2, out=s)
    np.add(v, s, out=v)                    # v += (g^2 - v) * (1 - beta_2)
    if v_hat is not None:
        np.maximum(v_hat, v, out=v_hat)
        v = v_hat
    np.sqrt(v, out=s)
    np.add(s, epsilon, out=s)
    t = np.multiply(m, alpha)
    np.divide(t, s, out=t)
    np.subtract(variable, t, out=variable)  # w -= (m * alpha) / (sqrt(v) + eps)


def sgd_momentum_update(variable, gradient, momentums, learning_rate, momentum, nesterov):
    """One SGD-with-momentum step (Keras 3 form) in place on variable and momentums."""
    step = np.multiply(gradient, learning_rate)
    np.multiply(momentums, momentum, out=momentums)
    np.subtract(momentums, step, out=momentums)     # m = momentum * m - lr * g
    if nesterov:
        np.subtract(np.multiply(momentums, momentum), step, out=step)
        np.add(variable, step, out=variable)        # w += momentum * m - lr * g
    else:
        np.add(variable, momentums, out=variable)   # w += m


def adamax_update(variable, gradient, m, u, learning_rate, one_minus_beta_1, beta_2, correction, epsilon):
    """One Adamax step in place on variable, m and u; correction is 1 - beta_1^t."""
    s = np.subtract(gradient, m)
    np.multiply(s, one_minus_beta_1, out=s)
    np.add(m, s, out=m)                     # m += (g - m) * (1 - beta_1)
    np.multiply(u, beta_2, out=u)
    np.abs(gradient, out=s)
    np.maximum(u, s, out=u)                 # u = max(beta_2 * u, |g|)
    np.add(u, epsilon, out=s)
    np.multiply(s, correction, out=s)
    t = np.multiply(m, learning_rate)
    np.divide(t, s, out=t)
    np.subtract(variable, t, out=variable)  # w -= (m * lr) / ((u + eps) * (1 - beta_1^t))


def lion_update(variable, gradient, m, learning_rate, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2):
    """One Lion step in place on variable and m."""
    s = np.multiply(m, beta_1)
    t = np.multiply(gradient, one_minus_beta_1)
    np.add(s, t, out=s)
    np.sign(s, out=s)
    np.multiply(s, learning_rate, out=s)
    np.subtract(variable, s, out=variable)  # w -= lr * sign(beta_1 m + (1 - beta_1) g)
    np.multiply(m, beta_2, out=m)
    np.multiply(gradient, one_minus_beta_2, out=t)
    np.add(m, t, out=m)                     # m = beta_2 m + (1 - beta_2) g


def ftrl_update(variable, gradient, accumulator, linear, learning_rate, power, l1, two_l2, two_shrinkage):
    """One FTRL step in place on variable, accumulator and linear (power = -learning_rate_power)."""
    t = np.multiply(variable, two_shrinkage)
    np.add(t, gradient, out=t)
    np.add(linear, t, out=linear)                  # z += g + 2 shrinkage w
    np.power(accumulator, power, out=t)            # n^p
    s = np.square(gradient)
    np.add(accumulator, s, out=accumulator)        # n' = n + g^2
    np.power(accumulator, power, out=s)            # n'^p
    np.subtract(s, t, out=t)
    np.divide(t, learning_rate, out=t)
    np.multiply(t, variable, out=t)
    np.subtract(linear, t, out=linear)             # z -= (n'^p - n^p) / lr * w
    np.divide(s, learning_rate, out=s)
    np.add(s, two_l2, out=s)                       # quadratic = n'^p / lr + 2 l2
    np.clip(linear, -l1, l1, out=t)
    np.subtract(t, linear, out=t)
    np.divide(t, s, out=variable)                  # w = (clip(z, -l1, l1) - z) / quadratic
