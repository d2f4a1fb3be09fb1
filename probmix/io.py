"""Save and load probmix objects as versioned, human-readable JSON: no pickle.

A file is one JSON object::

    {
      "format": "probmix",
      "format_version": 1,
      "probmix_version": "0.1.0",
      "metadata": {"columns": ["x", "y"]},
      "object": {"class": "probmix.MixtureModel", "weights": {...}, "components": [...]}
    }

- An object is ``{"class": NAME, FIELD: VALUE, ...}``: the class's public name and its
  constructor arguments (the ``init`` fields of the frozen ``attrs`` class, so every
  :class:`~probmix.Distribution`, covariance structure and prior is saved the same way, and a
  new family needs no code here). Derived caches (Cholesky factors, log-weights) are not
  written; the constructor recomputes them and re-runs every validator.
- An array is ``{"dtype": "float64", "shape": [2, 2], "data": [[1.0, 0.5], [0.5, 2.0]]}``.
  Floats are written with Python's shortest round-trip ``repr``, so float64 (and float32)
  values come back bit for bit; NaN and infinities, which JSON cannot hold, are the strings
  ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (in arrays) or ``{"float": "NaN"}`` (scalars).
- A fitted :class:`~probmix.GMM` is ``{"class": "probmix.GMM", "params": {...}, "fitted":
  {...}}``: the constructor parameters, then the fitted mixture ``model_``, ``history_`` (one
  list per column), ``restart_objectives_``, ``converged_``, ``n_iter_`` and the dtype; the
  scikit-learn-shaped arrays (``means_``, ``precisions_cholesky_``, …) are rebuilt from
  ``model_`` exactly as ``fit`` builds them, so they cannot disagree with it.

Why JSON with inline arrays rather than JSON plus an ``.npz``: one file to copy, diff and
review, readable without numpy, and nothing to keep in sync; mixture parameters are small
(K·d² numbers for full covariances), so the text overhead does not matter. ``np.load`` of an
``.npz`` is safe only with ``allow_pickle=False`` and adds a second artefact to lose.

Loading is safe: only classes in an allowlist are built (probmix's own, plus those passed to
:func:`register`); a class name is never imported. Loading validates everything and raises
``ValueError`` naming the place in the file, e.g.
``components[1].covariance.covariance: contains NaN or infinity``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from .distributions.base import Distribution

__all__ = [
    "FORMAT_VERSION",
    "SavedObject",
    "dumps",
    "loads",
    "reads",
    "save",
    "load",
    "read",
    "register",
    "registered_classes",
]

#: The version this module writes; files with a larger version are refused.
FORMAT_VERSION = 1
FORMAT_NAME = "probmix"

_GMM_NAME = "probmix.GMM"
_HISTORY_NAME = "probmix.em.History"
_DTYPES = ("float64", "float32", "int64", "int32", "bool")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

_BY_NAME: dict[str, type] = {}
_NAME_OF: dict[type, str] = {}
_BUILTINS_LOADED = False


# -- the allowlist ------------------------------------------------------------------------------
def register(cls: type, name: str | None = None) -> type:
    """Allow instances of ``cls`` (a frozen ``attrs`` class) to be saved and loaded.

    probmix's own distributions, covariance structures, priors and :class:`MixtureModel` are
    registered already; register your own component family before saving or loading a model
    that uses it. Usable as a class decorator.

    Parameters
    ----------
    cls : type
        An ``attrs`` class whose constructor arguments are its ``init`` fields.
    name : str, optional
        The name written in files; ``module.QualName`` by default.

    Returns
    -------
    cls
    """
    if not (isinstance(cls, type) and attrs.has(cls)):
        raise TypeError(f"only attrs classes can be registered, got {cls!r}")
    _ensure_builtins()
    name = name or f"{cls.__module__}.{cls.__qualname__}"
    known = _BY_NAME.get(name)
    if known is not None and known is not cls:
        raise ValueError(f"the name {name!r} is already registered for {known!r}")
    _BY_NAME[name] = cls
    _NAME_OF.setdefault(cls, name)
    return cls


def registered_classes() -> dict[str, type]:
    """The allowlist: every name a file may use, and the class it builds."""
    _ensure_builtins()
    return dict(_BY_NAME)


def _ensure_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from . import distributions, priors
    from .distributions.covariance import CovarianceStructure
    from .mixture import MixtureModel

    # Public names (probmix.distributions.Gaussian), not module paths, so files survive a
    # file being split or renamed. The first name of a class is the one written (aliases such
    # as MultivariateNormal are still read).
    for name in distributions.__all__:
        obj = getattr(distributions, name)
        if (isinstance(obj, type) and attrs.has(obj)
                and issubclass(obj, (Distribution, CovarianceStructure))):
            _add(f"probmix.distributions.{name}", obj)
    for name in priors.__all__:
        obj = getattr(priors, name)
        if isinstance(obj, type) and attrs.has(obj):
            _add(f"probmix.priors.{name}", obj)
    _add("probmix.MixtureModel", MixtureModel)


def _add(name: str, cls: type) -> None:
    _BY_NAME[name] = cls
    _NAME_OF.setdefault(cls, name)


# -- public functions ---------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class SavedObject:
    """What :func:`read` returns: the object and the file's header.

    Attributes
    ----------
    object : object
        The loaded MixtureModel, Distribution, prior or GMM.
    metadata : dict
        Free-form JSON data saved with it (e.g. the data's column names).
    format_version : int
    probmix_version : str
        The probmix version that wrote the file.
    """

    object: Any
    metadata: dict[str, Any]
    format_version: int
    probmix_version: str


def dumps(obj: Any, *, metadata: Mapping[str, Any] | None = None) -> str:
    """The file content for ``obj`` (see :func:`save`), as a string."""
    from . import __version__

    meta = dict(metadata or {})
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be plain JSON data (str keys, finite numbers, strings, "
                        f"lists, dicts): {exc}") from None
    document = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                "probmix_version": __version__, "metadata": meta, "object": _encode(obj, "")}
    return _pretty(document, 0) + "\n"


def save(obj: Any, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``obj`` to ``path`` as JSON (see the module docstring for the format).

    Parameters
    ----------
    obj : Distribution, MixtureModel, prior or GMM
        Fitted or not (a GMM that was not fitted saves its parameters only).
    path : str or Path
    metadata : mapping, optional
        Extra JSON data stored alongside (the command line stores the column names).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    TypeError
        For an object (or a part of it) of a class that is not registered.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from probmix import MixtureModel
    >>> from probmix.distributions import Gaussian
    >>> from probmix.io import load, save
    >>> model = MixtureModel(weights=[0.5, 0.5], components=[
    ...     Gaussian(mean=[0.0], covariance=[[1.0]]), Gaussian(mean=[3.0], covariance=[[2.0]])])
    >>> path = save(model, os.path.join(tempfile.mkdtemp(), "model.json"))
    >>> load(path) == model
    True
    """
    text = dumps(obj, metadata=metadata)
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path


def reads(text: str) -> SavedObject:
    """Parse and validate file content; see :func:`read`."""
    try:
        document = json.loads(text, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the file is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg})") from None
    except RecursionError:
        raise ValueError("the file is nested too deeply to be a probmix model") from None
    if not isinstance(document, dict):
        raise ValueError("the file is not a probmix model file: expected a JSON object at the "
                         f"top level, got {_json_type(document)}")
    if document.get("format") != FORMAT_NAME:
        raise ValueError(f"format: expected {FORMAT_NAME!r}, got {document.get('format')!r}; "
                         "this is not a probmix model file")
    version = _format_version(document)
    unexpected = sorted(set(document) - {"format", "format_version", "probmix_version",
                                         "metadata", "object"})
    if unexpected:
        raise ValueError(f"{unexpected[0]}: unexpected top-level field")
    if "object" not in document:
        raise ValueError("object: missing field")
    metadata = document.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata: expected a JSON object, got {_json_type(metadata)}")
    writer = document.get("probmix_version", "unknown")
    if not isinstance(writer, str):
        raise ValueError(f"probmix_version: expected a string, got {_json_type(writer)}")
    try:
        obj = _decode(document["object"], "", finite=True)
    except RecursionError:
        raise ValueError("the file is nested too deeply to be a probmix model") from None
    return SavedObject(object=obj, metadata=metadata, format_version=version,
                       probmix_version=writer)


def read(path: str | Path) -> SavedObject:
    """Load a file written by :func:`save`, with its metadata.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not valid JSON, not a probmix file, from a newer format version, or if any
        part is malformed (missing or unexpected field, wrong shape or dtype, NaN or infinity
        in a parameter, weights off the simplex, unknown class, …). The message starts with
        the place in the file, such as ``components[1].mean:``.
    """
    return reads(Path(path).read_text(encoding="utf-8"))


def loads(text: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """The object in file content ``text``; see :func:`load`."""
    return _check_kind(reads(text).object, kind)


def load(path: str | Path, kind: type | tuple[type, ...] | None = None) -> Any:
    """The object saved in ``path`` by :func:`save`.

    Parameters
    ----------
    path : str or Path
    kind : type or tuple of types, optional
        Require the object to be an instance of this (e.g. ``GMM``).

    Raises
    ------
    OSError, ValueError
        See :func:`read`; also ``ValueError`` if the object is not a ``kind``.
    """
    return _check_kind(read(path).object, kind)


def _check_kind(obj: Any, kind: type | tuple[type, ...] | None) -> Any:
    if kind is not None and not isinstance(obj, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"object: the file holds a {type(obj).__name__}, expected a {names}")
    return obj


def _parse_constant(name: str) -> float:
    # Bare NaN/Infinity are not JSON; accept them so a hand-edited file gets the same
    # field-level message as the quoted form rather than a parse error.
    return float(name)


def _format_version(document: dict[str, Any]) -> int:
    if "format_version" not in document:
        raise ValueError("format_version: missing field")
    version = document["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"format_version: expected a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        from . import __version__

        raise ValueError(f"format_version: the file has format version {version}, but this "
                         f"probmix ({__version__}) reads versions up to {FORMAT_VERSION}; "
                         "upgrade probmix to load it")
    return version


# -- encoding -----------------------------------------------------------------------------------
def _join(path: str, key: str) -> str:
    return key if not path else f"{path}.{key}"


def _encode(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _encode_float(float(value))
    if isinstance(value, np.ndarray):
        return _encode_array(value, path)
    if isinstance(value, (tuple, list)):
        return [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
    from .em.algorithm import History
    from .gmm import GMM

    if isinstance(value, GMM):
        return _encode_gmm(value, path)
    if isinstance(value, History):
        return _encode_history(value, path)
    _ensure_builtins()
    name = _NAME_OF.get(type(value))
    if name is None:
        raise TypeError(f"{path or 'object'}: cannot save a {type(value).__module__}."
                        f"{type(value).__qualname__}: only registered classes are saved "
                        "(see probmix.io.register)")
    out: dict[str, Any] = {"class": name}
    for field in attrs.fields(type(value)):
        if field.init:
            out[field.alias] = _encode(getattr(value, field.name), _join(path, field.alias))
    return out


def _encode_float(x: float) -> Any:
    if math.isfinite(x):
        return x
    return {"float": "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")}


def _encode_array(a: np.ndarray, path: str) -> dict[str, Any]:
    if a.dtype.name not in _DTYPES:
        raise TypeError(f"{path}: cannot save an array of dtype {a.dtype} (supported: "
                        f"{', '.join(_DTYPES)})")
    data = a.tolist()
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        data = _mark_non_finite(data)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": data}


def _mark_non_finite(data: Any) -> Any:
    if isinstance(data, list):
        return [_mark_non_finite(v) for v in data]
    if math.isfinite(data):
        return data
    return "NaN" if math.isnan(data) else ("Infinity" if data > 0 else "-Infinity")


def _encode_gmm(gmm: Any, path: str) -> dict[str, Any]:
    params = {}
    for name, value in gmm.get_params().items():
        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        elif isinstance(value, (np.random.Generator, np.random.RandomState,
                                np.random.SeedSequence)):
            warnings.warn(f"random_state is a {type(value).__name__}, which is not saved: the "
                          "loaded GMM has random_state=None (use an int seed to keep it)",
                          UserWarning, stacklevel=4)
            value = None
        params[name] = _encode(value, _join(path, f"params.{name}"))
    out: dict[str, Any] = {"class": _GMM_NAME, "params": params, "fitted": None}
    if hasattr(gmm, "model_"):
        fitted_path = _join(path, "fitted")
        out["fitted"] = {
            "dtype": gmm.means_.dtype.name,
            "converged_": bool(gmm.converged_),
            "n_iter_": int(gmm.n_iter_),
            "model_": _encode(gmm.model_, _join(fitted_path, "model_")),
            "history_": _encode_history(gmm.history_, _join(fitted_path, "history_")),
            "restart_objectives_": _encode_array(np.asarray(gmm.restart_objectives_, float),
                                                 _join(fitted_path, "restart_objectives_")),
        }
    return out


def _encode_history(history: Any, path: str) -> dict[str, Any]:
    from .em.algorithm import IterationRecord

    columns = {}
    for field in attrs.fields(IterationRecord):
        columns[field.alias] = [_encode(getattr(r, field.name), f"{path}.columns.{field.alias}")
                                for r in history.records]
    return {"class": _HISTORY_NAME, "columns": columns}


def _pretty(node: Any, level: int) -> str:
    """JSON with one key per line, but every list of numbers (an array's rows, a history
    column) on one line, and a short array on one line, so a covariance reads as a matrix."""
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(node, dict) and _flat(list(node.values())):
        line = json.dumps(node, allow_nan=False, separators=(", ", ": "))
        if len(line) + len(inner) <= 100:  # a small array or scalar object: one line
            return line
    if isinstance(node, dict) and node:
        items = [f"{inner}{json.dumps(k)}: {_pretty(v, level + 1)}" for k, v in node.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(node, list) and node and not _flat(node):
        items = [f"{inner}{_pretty(v, level + 1)}" for v in node]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(node, allow_nan=False)


def _flat(node: Any) -> bool:
    """A list holding only scalars (or such lists): printed on one line."""
    return all(_flat(v) if isinstance(v, list) else not isinstance(v, dict) for v in node)


# -- decoding -----------------------------------------------------------------------------------
def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), "a value")


def _decode(node: Any, path: str, *, finite: bool) -> Any:
    """A JSON value back to Python: objects, arrays, tuples (from lists) and scalars.

    ``finite``: refuse NaN and infinity (parameters); history columns and the restart
    objectives allow them.
    """
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if isinstance(node, float):
        if finite and not math.isfinite(node):
            raise ValueError(f"{path}: is {node}, but parameters must be finite")
        return node
    if isinstance(node, list):
        return tuple(_decode(v, f"{path}[{i}]", finite=finite) for i, v in enumerate(node))
    if not isinstance(node, dict):  # pragma: no cover - json gives nothing else
        raise ValueError(f"{path}: unexpected {type(node).__name__}")
    if "class" in node:
        return _decode_object(node, path, finite=finite)
    if set(node) == {"float"}:
        value = _NON_FINITE.get(node["float"]) if isinstance(node["float"], str) else None
        if value is None:
            raise ValueError(f"{path}.float: expected 'NaN', 'Infinity' or '-Infinity', got "
                             f"{node['float']!r}")
        return _decode(value, path, finite=finite)
    if "data" in node or "dtype" in node or "shape" in node:
        return _decode_array(node, path, finite=finite)
    raise ValueError(f"{path or 'object'}: expected an object with a 'class', an array "
                     f"(dtype, shape, data) or a value, got a JSON object with keys "
                     f"{sorted(node)}")


def _decode_array(node: dict[str, Any], path: str, *, finite: bool) -> np.ndarray:
    for key in ("dtype", "shape", "data"):
        if key not in node:
            raise ValueError(f"{_join(path, key)}: missing field (an array needs dtype, shape "
                             "and data)")
    extra = sorted(set(node) - {"dtype", "shape", "data"})
    if extra:
        raise ValueError(f"{_join(path, extra[0])}: unexpected field in an array")
    dtype = node["dtype"]
    if dtype not in _DTYPES:
        raise ValueError(f"{_join(path, 'dtype')}: unsupported dtype {dtype!r} (supported: "
                         f"{', '.join(_DTYPES)})")
    shape = node["shape"]
    if not (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool)
                                            and s >= 0 for s in shape)):
        raise ValueError(f"{_join(path, 'shape')}: expected a list of non-negative integers, "
                         f"got {shape!r}")
    kind = np.dtype(dtype).kind
    data = _scalars(node["data"], _join(path, "data"), kind)
    try:
        arr = np.array(data, dtype=dtype)
    except ValueError:  # ragged nesting
        raise ValueError(f"{_join(path, 'data')}: rows of different lengths, expected shape "
                         f"{tuple(shape)}") from None
    if arr.shape != tuple(shape):
        raise ValueError(f"{path}: wrong shape: the data has shape {arr.shape} but the file "
                         f"says {tuple(shape)}")
    if finite and kind == "f" and not np.all(np.isfinite(arr)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{path}: contains NaN or infinity (at index {index}); parameters "
                         "must be finite")
    return arr


def _scalars(data: Any, path: str, kind: str) -> Any:
    """Check every leaf of an array's nested data against the dtype's kind."""
    if isinstance(data, list):
        return [_scalars(v, path, kind) for v in data]
    if kind == "b":
        ok = isinstance(data, bool)
    elif kind in "iu":
        ok = isinstance(data, int) and not isinstance(data, bool)
    else:
        if isinstance(data, str) and data in _NON_FINITE:
            return _NON_FINITE[data]
        ok = isinstance(data, (int, float)) and not isinstance(data, bool)
    if not ok:
        raise ValueError(f"{path}: {data!r} is not a valid {_KIND_NAMES[kind]} value")
    return data


_KIND_NAMES = {"b": "boolean", "i": "integer", "u": "integer", "f": "floating-point"}


def _decode_object(node: dict[str, Any], path: str, *, finite: bool) -> Any:
    name = node["class"]
    where = _join(path, "class")
    if not isinstance(name, str):
        raise ValueError(f"{where}: expected a class name, got {_json_type(name)}")
    if name == _GMM_NAME:
        return _decode_gmm(node, path)
    if name == _HISTORY_NAME:
        return _decode_history(node, path)
    _ensure_builtins()
    cls = _BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"{where}: unknown class {name!r}; a file may only name probmix "
                         "classes (and ones registered with probmix.io.register)")
    fields = [f for f in attrs.fields(cls) if f.init]
    names = {f.alias for f in fields}
    extra = sorted(set(node) - names - {"class"})
    if extra:
        raise ValueError(f"{_join(path, extra[0])}: unexpected field for {name} (its fields: "
                         f"{', '.join(sorted(names))})")
    kwargs = {}
    for field in fields:
        key = _join(path, field.alias)
        if field.alias not in node:
            if field.default is attrs.NOTHING:
                raise ValueError(f"{key}: missing field (required by {name})")
            continue
        value = _decode(node[field.alias], key, finite=finite)
        _precheck(field, value, key)
        kwargs[field.alias] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path or 'object'}: invalid {name}: {exc}") from None


def _precheck(field: Any, value: Any, key: str) -> None:
    """Run a field's own converter alone, so its complaint is attributed to the field.

    (Converters that need the instance, and validators, run in the constructor; their
    messages name the field themselves.)
    """
    converter = field.converter
    if converter is None or isinstance(converter, attrs.Converter):
        return
    try:
        converter(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{key}: {exc}") from None


def _decode_gmm(node: dict[str, Any], path: str) -> Any:
    from .distributions.gaussian import TiedNormal
    from .em.algorithm import EMResult
    from .gmm import COVARIANCE_TYPES, GMM
    from .mixture import MixtureModel

    _reject_extra(node, {"class", "params", "fitted"}, path, _GMM_NAME)
    params_path = _join(path, "params")
    params = _object_field(node, "params", path)
    gmm = GMM()
    valid = set(gmm.get_params())
    for key, raw in params.items():
        where = _join(params_path, key)
        if key not in valid:
            raise ValueError(f"{where}: unknown GMM parameter (valid: {', '.join(sorted(valid))})")
        value = _decode(raw, where, finite=True)
        try:
            gmm.set_params(**{key: value})
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    fitted = node.get("fitted")
    if fitted is None:
        return gmm
    fpath = _join(path, "fitted")
    if not isinstance(fitted, dict):
        raise ValueError(f"{fpath}: expected an object or null, got {_json_type(fitted)}")
    required = ("dtype", "converged_", "n_iter_", "model_", "history_", "restart_objectives_")
    for key in required:
        if key not in fitted:
            raise ValueError(f"{_join(fpath, key)}: missing field")
    extra = sorted(set(fitted) - set(required))
    if extra:
        raise ValueError(f"{_join(fpath, extra[0])}: unexpected field")
    dtype = fitted["dtype"]
    if dtype not in ("float64", "float32"):
        raise ValueError(f"{_join(fpath, 'dtype')}: expected 'float64' or 'float32', got "
                         f"{dtype!r}")
    converged = fitted["converged_"]
    if not isinstance(converged, bool):
        raise ValueError(f"{_join(fpath, 'converged_')}: expected true or false, got "
                         f"{converged!r}")
    n_iter = fitted["n_iter_"]
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"{_join(fpath, 'n_iter_')}: expected a non-negative integer, got "
                         f"{n_iter!r}")
    model = _decode(fitted["model_"], _join(fpath, "model_"), finite=True)
    if not isinstance(model, MixtureModel):
        raise ValueError(f"{_join(fpath, 'model_')}: expected a MixtureModel, got "
                         f"{type(model).__name__}")
    family = COVARIANCE_TYPES[gmm.covariance_type]
    for k, comp in enumerate(model.components):
        if type(comp) is not family:
            raise ValueError(f"{_join(fpath, f'model_.components[{k}]')}: a GMM with "
                             f"covariance_type={gmm.covariance_type!r} has {family.__name__} "
                             f"components, got {type(comp).__name__}")
    if model.n_components > gmm.n_components:
        raise ValueError(f"{_join(fpath, 'model_')}: {model.n_components} components, more "
                         f"than n_components={gmm.n_components}")
    if family is TiedNormal and not _shared(model):
        raise ValueError(f"{_join(fpath, 'model_')}: the components of a tied GMM must share "
                         "one covariance")
    history = _decode(fitted["history_"], _join(fpath, "history_"), finite=False)
    if type(history).__name__ != "History" or len(history) == 0:
        raise ValueError(f"{_join(fpath, 'history_')}: expected a non-empty History")
    objectives = _decode(fitted["restart_objectives_"], _join(fpath, "restart_objectives_"),
                         finite=False)
    if (not isinstance(objectives, np.ndarray) or objectives.dtype.kind != "f"
            or objectives.shape != (gmm.n_init,)):
        raise ValueError(f"{_join(fpath, 'restart_objectives_')}: expected a float array of "
                         f"shape ({gmm.n_init},) (one entry per initialisation, n_init)")
    result = EMResult(model=model, converged=converged, n_iter=n_iter, history=history,
                      component_ids=np.arange(model.n_components))
    # The same code as fit(), so every derived fitted attribute is exactly what fit() set.
    gmm._set_fitted(result, objectives, np.empty((0, model.n_features), dtype=dtype))
    return gmm


def _shared(model: Any) -> bool:
    first = model.components[0].covariance
    return all(c.covariance == first for c in model.components[1:])


def _reject_extra(node: dict[str, Any], allowed: set[str], path: str, name: str) -> None:
    """A field the format does not define is an error naming it (no silent skipping)."""
    extra = sorted(set(node) - allowed)
    if extra:
        raise ValueError(f"{_join(path, extra[0])}: unexpected field for {name}")


def _object_field(node: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """``node[key]``, which must be a JSON object; else an error naming its path."""
    value = node.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{_join(path, key)}: " + ("missing field" if value is None else
                                                    f"expected an object, got {_json_type(value)}"))
    return value


def _decode_history(node: dict[str, Any], path: str) -> Any:
    from .em.algorithm import History, IterationRecord

    _reject_extra(node, {"class", "columns"}, path, _HISTORY_NAME)
    cpath = _join(path, "columns")
    columns = _object_field(node, "columns", path)
    fields = {str(f.alias): f for f in attrs.fields(IterationRecord) if f.init}
    extra = sorted(set(columns) - set(fields))
    if extra:
        raise ValueError(f"{_join(cpath, extra[0])}: unexpected history column")
    lengths = set()
    decoded: dict[str, tuple[Any, ...]] = {}
    for name, field in fields.items():
        key = _join(cpath, name)
        if name not in columns:
            if field.default is attrs.NOTHING:
                raise ValueError(f"{key}: missing column")
            continue
        if not isinstance(columns[name], list):
            raise ValueError(f"{key}: expected a list, got {_json_type(columns[name])}")
        decoded[name] = _decode(columns[name], key, finite=False)
        for i, value in enumerate(decoded[name]):
            _check_record_value(field, value, f"{key}[{i}]")
        lengths.add(len(decoded[name]))
    if len(lengths) > 1:
        raise ValueError(f"{cpath}: columns of different lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    records = [IterationRecord(**{name: values[i] for name, values in decoded.items()})
               for i in range(n)]
    return History(records)


def _check_record_value(field: Any, value: Any, key: str) -> None:
    """IterationRecord has no validators: check the plain types its annotations promise."""
    from .mixture import MixtureModel

    kind = str(field.type).replace(" ", "")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": number,
          "float|None": number or value is None,
          "tuple[int,...]": isinstance(value, tuple) and all(
              isinstance(v, int) and not isinstance(v, bool) for v in value),
          "MixtureModel|None": value is None or isinstance(value, MixtureModel),
          }.get(kind, True)
    if not ok:
        raise ValueError(f"{key}: {value!r} is not a valid {kind}")
