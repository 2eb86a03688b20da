"""Compiled kernels (private). Each `<op>.pyx` sits beside its NumPy twin `<op>_numpy.py`,
which has the same function names, signatures and results. Use `cynet.kernels` instead."""
