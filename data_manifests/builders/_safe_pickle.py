"""Load an untrusted pickle that should hold only plain data (dicts/lists of numbers, numpy arrays).

``pickle.load`` runs whatever callable a file names, so a downloaded label file could execute code.
``load_data_pickle`` uses an Unpickler whose ``find_class`` resolves only an explicit allow-list:
the builtin container/number types and the numpy functions that rebuild arrays and scalars (old and
new numpy module paths, because label files written with numpy 1.x name ``numpy.core``). Any other
global (``os.system``, ``builtins.eval``, a user class...) is refused before it is imported.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import pickle
import struct
from pathlib import Path

import numpy as np

from data_manifests.schema import ManifestError

try:  # numpy >= 2 keeps the array machinery in numpy._core
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

_BUILTIN_TYPES = ("dict", "list", "tuple", "set", "frozenset", "int", "float", "bool", "complex", "str",
                  "bytes", "bytearray")

_ALLOWED: dict[tuple[str, str], object] = {}
for _module in ("builtins", "__builtin__"):  # "__builtin__": protocol 0-2 pickles written by Python 2
    for _name in _BUILTIN_TYPES:
        _ALLOWED[(_module, _name)] = getattr(builtins, _name)
_ALLOWED[("collections", "OrderedDict")] = collections.OrderedDict
# Protocol 0-2 pickles store bytes (e.g. an array's raw buffer) as _codecs.encode(text, "latin1").
_ALLOWED[("_codecs", "encode")] = codecs.encode
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = np.dtype
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_module, "scalar")] = _multiarray.scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = _numeric._frombuffer  # protocol 5 arrays


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a callable or class outside the allow-list."""


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise RefusedGlobal(f"persistent id {pid!r}")


def load_data_pickle(path: Path, what: str):
    """The object stored in ``path``; ManifestError if the file is missing, malformed or not plain data."""
    if not path.is_file():
        raise ManifestError(f"{what} not found: expected {path}")
    try:
        with path.open("rb") as handle:
            # latin1: Python 2 pickles of numpy arrays store their buffers as 8-bit str.
            return _DataOnlyUnpickler(handle, encoding="latin1").load()
    except RefusedGlobal as exc:
        raise ManifestError(
            f"refusing to load {path}: it references {exc}, but a label pickle may only contain dicts, lists, "
            f"numbers, strings and numpy arrays (the file may be malicious or not a label file)"
        ) from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, struct.error, OSError) as exc:
        raise ManifestError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}") from exc
