"""Type aliases of cynet's public signatures (what mypy checks; see pyproject.toml [tool.mypy]).

The ops take anything NumPy converts to an array: arrays, Tensors, Variables (through
`__array__`), Python and NumPy scalars, nested sequences. They return NumPy arrays (Tensors, an
ndarray subclass, while a tape records).
"""
from collections.abc import Sequence
from typing import Union

from numpy.typing import ArrayLike, DTypeLike

#: An axis argument: an int, a tuple of ints, or None (every axis).
Axis = Union[int, tuple[int, ...], None]
#: A shape: an int or a sequence of ints.
Shape = Union[int, Sequence[int]]

__all__ = ["ArrayLike", "Axis", "DTypeLike", "Shape"]
