r"""Pure mapping of Python values onto what MLflow can hold: params, metrics, tags, config JSON.

No I/O and no MLflow import: everything here is a function of its arguments, so it can be tested
exhaustively and fuzzed without a store.

The rules, in one place:

* Nested pydantic models, dataclasses, NamedTuples and mappings flatten to dotted keys
  (``battery.capacity_kwh``).
* Param values are formatted canonically: enums by value, bools ``true``/``false``, integral floats
  as integers (``7`` and ``7.0`` both give ``"7"``), other floats in Python's shortest round-trip
  form, ``None`` skipped, lists of scalars as compact JSON.
* Secrets never leave the process: ``SecretStr``/``SecretBytes`` values, values under keys that
  match the secret pattern, and values of secret-named environment variables appearing inside any
  string are replaced by ``***``.
* Keys MLflow would reject (characters outside ``[/\w.\- :]``, path-like keys such as ``../x``,
  ``a//b`` or ``./a``, more than 250 characters) are rewritten deterministically: offending
  characters become ``_`` and an 8-hex-digit digest of the original key is appended, so two keys
  never collide and the same key maps the same way in every run. The original is kept.
* Values longer than MLflow's limits (6,000 characters for params, 8,000 for tags) are cut with a
  visible marker; the whole value is kept.
* Return values: numbers become metrics, bools 0/1, strings tags; a pandas Series gives one metric
  per index label, a DataFrame one step per row; sequences of numbers become per-step series.
* NaN is logged as NaN (MLflow stores it faithfully). ``±inf`` is not sent as a metric value,
  because MLflow's SQL stores silently turn it into ``±1.8e308``; it is logged as the tag
  ``emstrack.nonfinite.<key>`` and kept in ``config.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import json
import math
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
REDACTED = "***"
TRUNCATION_MARKER = " …[cut; whole value in config.json]"
NONFINITE_TAG_PREFIX = "emstrack.nonfinite."
_MIN_SECRET_LENGTH = 6
_MIN_LEARNED_SECRET_LENGTH = 4
#: Environment variables whose names look secret but hold none (``PWD`` is the working folder).
_NOT_SECRET_VARIABLES = frozenset({"PWD", "OLDPWD"})
_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)(?=@)"
)
_MAX_SERIES_IN_PARAM = 100
_MAX_DEPTH = 32

_VALID_KEY = re.compile(r"^[/\w.\- :]+$")
_INVALID_KEY_CHAR = re.compile(r"[^/\w.\- :]")

Path = tuple[str, ...]


# --------------------------------------------------------------------------- secrets


@functools.lru_cache(maxsize=4096)
def _matches(pattern: re.Pattern[str], key: str) -> bool:
    """Whether ``key`` names a secret (a run checks the same keys again and again)."""
    return pattern.search(key) is not None


def _secrets_among(
    key_pattern: re.Pattern[str], variables: Iterable[tuple[str, str]]
) -> tuple[str, ...]:
    values = {
        value
        for name, value in variables
        if name.upper() not in _NOT_SECRET_VARIABLES
        and key_pattern.search(name)
        and len(value) >= _MIN_SECRET_LENGTH
    }
    # Longest first, so a secret containing another is replaced whole.
    return tuple(sorted(values, key=len, reverse=True))


@functools.lru_cache(maxsize=8)
def _environment_secrets(
    key_pattern: re.Pattern[str], encoded: tuple[tuple[Any, Any], ...]
) -> tuple[str, ...]:
    """:func:`_secrets_among` the process environment, as ``os.environ`` stores it."""
    decode_key: Any = getattr(os.environ, "decodekey", str)
    decode_value: Any = getattr(os.environ, "decodevalue", str)
    return _secrets_among(
        key_pattern, ((decode_key(name), decode_value(value)) for name, value in encoded)
    )


@dataclass(frozen=True, slots=True)
class Redactor:
    """What counts as a secret: a key pattern and the values of secret-named environment vars."""

    key_pattern: re.Pattern[str]
    secret_values: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, key_pattern: re.Pattern[str], environ: Mapping[str, str]) -> Redactor:
        data = getattr(environ, "_data", None) if environ is os.environ else None
        if isinstance(data, dict):
            # Every run reads the process environment: scan it again only when it changed.
            return cls(key_pattern, _environment_secrets(key_pattern, tuple(data.items())))
        return cls(key_pattern, _secrets_among(key_pattern, environ.items()))

    def learn(self, values: Iterable[str]) -> Redactor:
        """A redactor that also scrubs ``values`` (secrets met in the run) from every text."""
        new = {
            value
            for value in values
            if isinstance(value, str)
            and len(value) >= _MIN_LEARNED_SECRET_LENGTH
            and value != REDACTED
        }
        new.difference_update(self.secret_values)
        if not new:
            return self
        every = sorted({*self.secret_values, *new}, key=len, reverse=True)
        return Redactor(self.key_pattern, tuple(every))

    def is_secret_key(self, key: str) -> bool:
        return _matches(self.key_pattern, key)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and every password inside a URL replaced by ``***``."""
        if "://" in text:
            text = _URL_CREDENTIALS.sub(lambda match: match["head"] + REDACTED, text)
        for secret in self.secret_values:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub_tree(self, document: Any) -> Any:
        """A JSON-ready ``document`` with :meth:`scrub` applied to every string in it."""
        if isinstance(document, str):
            return self.scrub(document)
        if isinstance(document, dict):
            return {self.scrub(str(k)): self.scrub_tree(v) for k, v in document.items()}
        if isinstance(document, list | tuple):
            return [self.scrub_tree(item) for item in document]
        return document


def url_passwords(text: str) -> list[str]:
    """Passwords written into URLs in ``text`` (``postgresql://user:PASSWORD@host/db``)."""
    if "://" not in text:
        return []
    return [match["password"] for match in _URL_CREDENTIALS.finditer(text)]


def _secret_text(value: object) -> str | None:
    """The clear text of a secret value (a ``SecretStr``, or a string under a secret key)."""
    if is_secret_value(value):
        try:
            inner = value.get_secret_value()  # type: ignore[attr-defined]
        except Exception:
            return None
        if isinstance(inner, bytes):
            return inner.decode("utf-8", "replace")
        return inner if isinstance(inner, str) else None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def secret_values(value: object, redactor: Redactor) -> set[str]:
    """Every secret inside ``value``: secret-named fields, ``SecretStr`` values, URL passwords."""
    found: set[str] = set()

    def walk(item: object, secret: bool, depth: int) -> None:
        if depth > _MAX_DEPTH or item is None:
            return
        if secret or is_secret_value(item):
            text = _secret_text(item)
            if text is not None:
                found.add(text)
                return
        if isinstance(item, str):
            found.update(url_passwords(item))
            return
        try:
            children = child_items(item)
            if children is None:
                if isinstance(item, list | tuple | set | frozenset):
                    for child in list(item)[: _MAX_SERIES_IN_PARAM * 10]:
                        walk(child, secret, depth + 1)
                return
            for name, child in children:
                walk(child, secret or redactor.is_secret_key(name), depth + 1)
        except Exception:
            return

    walk(value, False, 0)
    return found


def is_secret_value(value: object) -> bool:
    # SecretStr / SecretBytes without importing pydantic when it is not in use.
    cls = type(value)
    return cls.__module__.startswith("pydantic") and cls.__name__ in {
        "SecretStr",
        "SecretBytes",
        "Secret",
    }


# --------------------------------------------------------------------------- keys and values


def key_digest(text: str) -> str:
    """Eight hex digits identifying ``text``; stable across runs and processes."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def is_valid_key(key: str) -> bool:
    """Whether MLflow accepts ``key`` as a param, metric or tag name, unchanged."""
    if len(key) > MAX_KEY_LENGTH or not _VALID_KEY.match(key):
        return False
    normalized = posixpath.normpath(key)
    return not (normalized != key or normalized == "." or normalized.startswith(("..", "/")))


@functools.lru_cache(maxsize=8192)
def mlflow_key(key: str) -> str:
    """``key`` if MLflow accepts it, else a valid key derived from it deterministically.

    Remembered: a run maps the same fifty keys as the run before it.
    """
    if is_valid_key(key):
        return key
    suffix = "-" + key_digest(key)
    parts = []
    for part in _INVALID_KEY_CHAR.sub("_", key).split("/"):
        if part:  # drops the empty parts of "/x", "a//b" and "x/"
            parts.append("_" * len(part) if set(part) == {"."} else part)
    body = "/".join(parts)[: MAX_KEY_LENGTH - len(suffix) - 1]
    candidate = (body if not body.startswith(".") else "_" + body) + suffix
    return candidate if is_valid_key(candidate) else "key" + suffix


def clean_text(text: str) -> str:
    """``text`` made storable anywhere: NUL (refused by PostgreSQL) and lone surrogates escaped."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def fit_value(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else its start and a visible marker."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


def format_float(value: float) -> str:
    """One canonical text per float: ``7.0`` gives ``"7"``, ``0.1`` gives ``"0.1"``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


# --------------------------------------------------------------------------- value kinds


def _numpy_scalar(value: object) -> object:
    """A numpy scalar or 0-d array as the Python scalar it holds; anything else unchanged.

    A NaN ``Decimal`` (quiet or signalling, which ``float()`` refuses) becomes ``float("nan")``.
    """
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        shape = getattr(value, "shape", ())
        if shape == ():
            return value.item()
    if isinstance(value, decimal.Decimal) and value.is_nan():
        return math.nan
    return value


def _is_pandas(value: object, name: str) -> bool:
    cls = type(value)
    return cls.__module__.startswith("pandas") and cls.__name__ == name


def is_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _is_model(value: object) -> bool:
    return hasattr(type(value), "model_fields") and hasattr(value, "model_dump")


def safe_text(value: object, *, use_repr: bool = False) -> str:
    """``str(value)`` (or ``repr``), never raising: a failing one gives ``<TypeName>``."""
    try:
        text = repr(value) if use_repr else str(value)
    except Exception:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    return text if isinstance(text, str) else f"<{type(value).__qualname__}>"


def _sort_key(value: object) -> str:
    return safe_text(value, use_repr=True)


def child_items(value: object) -> Iterator[tuple[str, object]] | None:
    """Named parts of a structured value, or ``None`` for a leaf."""
    if isinstance(value, Mapping):
        return ((k if isinstance(k, str) else safe_text(k), v) for k, v in value.items())
    if _is_model(value):
        names = list(type(value).model_fields)  # type: ignore[attr-defined]
        extra = getattr(value, "model_extra", None) or {}
        return ((name, getattr(value, name, None)) for name in [*names, *extra])
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        fields: dict[str, object] = value._asdict()
        return iter(fields.items())
    return None


def scalar_text(value: object) -> str | None:
    """Canonical text of a scalar, or ``None`` if ``value`` is not a scalar."""
    value = _numpy_scalar(value)
    if isinstance(value, enum.Enum):
        return scalar_text(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return format_float(float(value))
        return format(value.normalize(), "f")
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return format_float(value.total_seconds())
    if type(value).__name__ in {"PosixPath", "WindowsPath", "PurePosixPath", "UUID"}:
        return safe_text(value)
    return None


def describe(value: object) -> str:
    """A short description of a value that is not logged as it is, for the config and warnings."""
    if _is_pandas(value, "DataFrame"):
        rows, cols = value.shape  # type: ignore[attr-defined]
        return f"<pandas.DataFrame {rows}x{cols}>"
    if _is_pandas(value, "Series"):
        return f"<pandas.Series len={len(value)}>"  # type: ignore[arg-type]
    if is_array(value):
        return f"<numpy.ndarray shape={tuple(value.shape)}>"  # type: ignore[attr-defined]
    cls = type(value)
    return f"<{cls.__module__}.{cls.__qualname__}>"


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class Mapped:
    """What a value mapped onto, plus everything that was changed on the way."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    """MLflow key -> the original key it was derived from."""
    cut: dict[str, str] = field(default_factory=dict)
    """MLflow key -> the whole value that was cut to fit."""
    nonfinite: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    """Original key -> (step, "inf" | "-inf") that were not sent as metric values."""
    unlogged: dict[str, str] = field(default_factory=dict)
    """Original key -> why it could not be logged and what it was."""
    unlogged_values: dict[str, Any] = field(default_factory=dict)
    """Original key -> the value that could not be logged, as JSON (kept in config.json)."""
    secrets: set[str] = field(default_factory=set)
    """Clear texts of the secrets met (redacted here; scrubbed from every later text)."""

    def merge(self, other: Mapped) -> None:
        """Add ``other``'s entries; the first value of a param wins, as in MLflow."""
        for key, value in other.params.items():
            self.params.setdefault(key, value)
        self.metrics.extend(other.metrics)
        self.tags.update(other.tags)
        self.renamed.update(other.renamed)
        self.cut.update(other.cut)
        for key, points in other.nonfinite.items():
            self.nonfinite.setdefault(key, []).extend(points)
        self.unlogged.update(other.unlogged)
        self.unlogged_values.update(other.unlogged_values)
        self.secrets.update(other.secrets)


def _join(path: Path) -> str:
    return ".".join(path) if path else "value"


def _display(path: Path) -> str:
    """The path with its parts visible: ``"x.a".b`` differs from ``x."a.b"``."""
    if not path:
        return "value"
    return ".".join(json.dumps(part) if "." in part or not part else part for part in path)


class _Builder:
    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.out = Mapped()
        self._origin: dict[tuple[str, str], Path] = {}

    def key(self, path: Path, kind: str) -> str | None:
        original = _join(path)
        # The digest of a rewritten key is taken from the original, not its cleaned text, so
        # "a\x00" (NUL) and "a\\x00" (a backslash) stay two keys.
        key = mlflow_key(original)
        if key != original:
            self.out.renamed[key] = original
        seen = self._origin.setdefault((kind, key), path)
        if seen != path:
            self.out.unlogged[_display(path)] = (
                f"{kind} key {key!r} is already taken by {_display(seen)}: both flatten to the "
                "same dotted name"
            )
            return None
        return key

    def unlogged(self, path: Path, why: str, value: object) -> None:
        """``value`` fits nowhere: say why, and keep it as JSON for config.json."""
        key = _join(path)
        self.out.unlogged[key] = why
        try:
            self.out.unlogged_values[key] = to_jsonable(value, self.redactor, _path=path)
        except Exception:
            self.out.unlogged_values[key] = describe(value)

    def redacted(self, path: Path, value: object) -> None:
        """``value`` is a secret: remember its text, so it is scrubbed wherever it shows up."""
        text = _secret_text(value)
        if text is not None:
            self.out.secrets.add(text)

    def text(self, value: str, limit: int, key: str) -> str:
        self.out.secrets.update(url_passwords(value))
        value = clean_text(self.redactor.scrub(value))
        fitted = fit_value(value, limit)
        if fitted != value:
            self.out.cut[key] = value
        return fitted

    def is_secret(self, path: Path) -> bool:
        return bool(path) and self.redactor.is_secret_key(path[-1])


# --------------------------------------------------------------------------- params


def maps_cleanly(value: object, _depth: int = 0) -> bool:
    """Whether ``value`` is naturally a param.

    A scalar, a short list of scalars, or a structure made only of those (a dataclass holding a
    DataFrame is not).
    """
    if value is None or is_secret_value(value):
        return True
    children = child_items(value)
    if children is not None:
        return _depth < _MAX_DEPTH and all(maps_cleanly(child, _depth + 1) for _, child in children)
    return scalar_text(value) is not None or _sequence_text(value, Redactor(_NEVER)) is not None


_NEVER = re.compile(r"(?!)")


def map_params(values: object, redactor: Redactor, *, prefix: Path = ()) -> Mapped:
    """Flatten ``values`` (a model, dataclass, mapping or NamedTuple) onto MLflow params."""
    builder = _Builder(redactor)
    children = child_items(values)
    if children is None:
        _param_leaf(builder, prefix, values)
    else:
        for name, child in children:
            _param(builder, (*prefix, name), child)
    return builder.out


def _param(builder: _Builder, path: Path, value: object) -> None:
    if value is None:
        return
    if builder.is_secret(path) or is_secret_value(value):
        builder.redacted(path, value)
        key = builder.key(path, "param")
        if key is not None:
            builder.out.params[key] = REDACTED
        return
    children = child_items(value)
    if children is not None:
        for name, child in children:
            _param(builder, (*path, name), child)
        return
    _param_leaf(builder, path, value)


def _param_leaf(builder: _Builder, path: Path, value: object) -> None:
    text = scalar_text(value)
    if text is None:
        text = _sequence_text(value, builder.redactor)
    if text is None:
        # Not a param by nature (a DataFrame, an arbitrary object): described in config.json.
        builder.unlogged(path, f"not a param value: {describe(value)}", value)
        return
    key = builder.key(path, "param")
    if key is not None:
        builder.out.params[key] = builder.text(text, MAX_PARAM_VALUE_LENGTH, key)


def _sequence_text(value: object, redactor: Redactor) -> str | None:
    """Compact JSON of a short sequence or set of scalars (``[1,2.5,"a",null]``), else ``None``."""
    if is_array(value) and value.ndim == 1:  # type: ignore[attr-defined]
        value = value.tolist()  # type: ignore[attr-defined]
    if isinstance(value, set | frozenset):
        items: list[object] = sorted(value, key=_sort_key)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    if len(items) > _MAX_SERIES_IN_PARAM:
        return None
    rendered: list[object] = []
    for item in items:
        item = _numpy_scalar(item)
        if isinstance(item, enum.Enum):
            item = item.value
        if item is None or isinstance(item, bool | int):
            rendered.append(item)
        elif is_secret_value(item):
            rendered.append(REDACTED)
        elif isinstance(item, float | decimal.Decimal):
            number = format_float(float(item))
            rendered.append(json.loads(number) if number not in {"nan", "inf", "-inf"} else number)
        else:
            text = scalar_text(item)
            if text is None:
                return None
            rendered.append(redactor.scrub(text))
    return json.dumps(rendered, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- metrics


def map_outputs(value: object, redactor: Redactor, *, step: int | None = None) -> Mapped:
    """Map a return value onto metrics (numbers, bools as 0/1) and tags (strings).

    ``step`` is the step of scalar metrics; DataFrames and sequences bring their own steps.
    """
    builder = _Builder(redactor)
    value = _numpy_scalar(value)
    if _is_pandas(value, "DataFrame"):
        _frame(builder, (), value)
    elif _is_pandas(value, "Series"):
        _labelled(builder, (), value)
    elif isinstance(value, tuple) and not hasattr(value, "_asdict"):
        builder.out.unlogged["value"] = (
            "a plain tuple has no names; pass metrics= an extractor or a model: " + describe(value)
        )
    else:
        _output(builder, (), value, step)
    return builder.out


def _output(builder: _Builder, path: Path, value: object, step: int | None) -> None:
    value = _numpy_scalar(value)
    if value is None:
        return
    if builder.is_secret(path) or is_secret_value(value):
        builder.redacted(path, value)
        key = builder.key(path, "tag")
        if key is not None:
            builder.out.tags[key] = REDACTED
        return
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        _metric(builder, path, 1.0 if value else 0.0, step)
        return
    if isinstance(value, int | float | decimal.Decimal):
        if _beyond_float(value):
            _output(builder, path, _int_text(value), step)  # kept exactly, as a tag
            return
        _metric(builder, path, float(value), step)
        return
    if isinstance(value, str):
        key = builder.key(path, "tag")
        if key is not None:
            builder.out.tags[key] = builder.text(value, MAX_TAG_VALUE_LENGTH, key)
        return
    if _is_pandas(value, "DataFrame"):
        _frame(builder, path, value)
        return
    if _is_pandas(value, "Series"):
        _labelled(builder, path, value)
        return
    children = child_items(value)
    if children is not None:
        for name, child in children:
            _output(builder, (*path, name), child, step)
        return
    if is_array(value) and value.ndim == 1:  # type: ignore[attr-defined]
        value = value.tolist()  # type: ignore[attr-defined]
    if isinstance(value, list | tuple) and path and _all_numbers(value):
        _series(builder, path, value, 0)
        return
    text = scalar_text(value)
    if text is not None and path:
        key = builder.key(path, "tag")
        if key is not None:
            builder.out.tags[key] = builder.text(text, MAX_TAG_VALUE_LENGTH, key)
        return
    builder.unlogged(path, f"not a metric or tag: {describe(value)}", value)


def _beyond_float(value: object) -> TypeGuard[int]:
    """An integer too large for a float (``float()`` would raise ``OverflowError``)."""
    if not isinstance(value, int) or -(2**1023) < value < 2**1023:
        return False
    try:
        float(value)
    except OverflowError:
        return True
    return False


def _int_text(value: int) -> str:
    """Decimal text, or exact hexadecimal beyond Python's int-to-str digit limit (4,300)."""
    try:
        return str(value)
    except ValueError:
        return f"{value:#x}"


def _all_numbers(values: Sequence[object]) -> bool:
    return all(isinstance(_numpy_scalar(v), int | float | decimal.Decimal) for v in values)


def _metric(builder: _Builder, path: Path, value: float, step: int | None) -> None:
    if _kept_as_nonfinite(builder, path, value, step or 0):
        return
    key = builder.key(path, "metric")
    if key is not None:
        builder.out.metrics.append((key, value, step or 0))


def _kept_as_nonfinite(builder: _Builder, path: Path, value: float, step: int) -> bool:
    """An infinite value is no MLflow metric: kept for the ``emstrack.nonfinite.*`` tag."""
    if not math.isinf(value):
        return False
    builder.out.nonfinite.setdefault(_join(path), []).append((step, "inf" if value > 0 else "-inf"))
    return True


def map_series(name: str, values: Iterable[object], redactor: Redactor, start_step: int) -> Mapped:
    """One metric ``name`` per value, at steps ``start_step``, ``start_step + 1``, ..."""
    builder = _Builder(redactor)
    _series(builder, (name,), values, start_step)
    return builder.out


def _series(builder: _Builder, path: Path, values: Iterable[object], start_step: int) -> None:
    for offset, item in enumerate(values):
        item = _numpy_scalar(item)
        if isinstance(item, bool):
            item = float(item)
        if isinstance(item, int | float | decimal.Decimal) and not _beyond_float(item):
            _metric(builder, path, float(item), start_step + offset)
        elif item is not None:
            builder.unlogged(
                (*path[:-1], f"{path[-1] if path else 'value'}[{start_step + offset}]"),
                f"not a number: {describe(item)}",
                item,
            )


def _labelled(builder: _Builder, path: Path, series: Any) -> None:
    for label, item in series.items():
        _output(builder, (*path, scalar_text(label) or safe_text(label)), item, None)


def _frame(builder: _Builder, path: Path, frame: Any) -> None:
    """Columns become metric keys, rows steps: the row's integer index label, else its position."""
    import numpy as np

    index = frame.index
    integer_index = str(index.dtype).startswith(("int", "uint")) and index.is_unique
    steps = [int(i) for i in index] if integer_index else list(range(len(frame)))
    paths = [(*path, scalar_text(column) or safe_text(column)) for column in frame.columns]
    numeric = [
        position
        for position, dtype in enumerate(frame.dtypes)
        if isinstance(dtype, np.dtype) and dtype.kind in "fiub"
    ]
    # The numpy-typed numeric columns in one conversion: a column at a time costs a pandas
    # lookup each (a sweep's daily frame has twenty).
    block = frame if len(numeric) == frame.shape[1] else frame.iloc[:, numeric]
    rows = block.to_numpy(dtype=float).T.tolist() if numeric else []
    as_floats = dict(zip(numeric, rows, strict=True))
    taken: set[Path] = set()
    for position, column_path in enumerate(paths):
        if column_path in taken:
            builder.out.unlogged[_display(column_path)] = (
                "a DataFrame column of the same name came first; only that one is logged"
            )
            continue
        taken.add(column_path)
        secret = builder.is_secret(column_path)
        floats = as_floats.get(position)
        if floats is not None and not secret:
            _numeric_column(builder, column_path, steps, floats)
            continue
        values = frame.iloc[:, position]
        if getattr(values.dtype, "kind", "O") in "fiub" and not secret:
            _numeric_column(builder, column_path, steps, values.tolist())
            continue
        for row_step, item in zip(steps, values.tolist(), strict=True):
            _output(builder, column_path, item, row_step)


def _numeric_column(builder: _Builder, path: Path, steps: list[int], values: list[Any]) -> None:
    """A numeric column: what :func:`_output` does per value, with its key worked out once."""
    key: str | None = None
    keyed = False
    for row_step, item in zip(steps, values, strict=True):
        value = float(item)
        if _kept_as_nonfinite(builder, path, value, row_step):
            continue
        if not keyed:
            key, keyed = builder.key(path, "metric"), True
        if key is not None:
            builder.out.metrics.append((key, value, row_step))


# --------------------------------------------------------------------------- config JSON


def to_jsonable(value: object, redactor: Redactor, *, _path: Path = ()) -> Any:
    """A JSON-ready copy of ``value`` with secrets redacted, for ``config.json``.

    Models and dataclasses become objects, enums their values, non-finite floats the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (which pydantic reads back as floats), and
    anything else that JSON cannot hold a short description.
    """
    value = _numpy_scalar(value)
    if _path and redactor.is_secret_key(_path[-1]) and value is not None:
        return REDACTED
    if is_secret_value(value):
        return REDACTED
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return redactor.scrub(value)
    if isinstance(value, complex):
        return {
            "real": to_jsonable(value.real, redactor),
            "imag": to_jsonable(value.imag, redactor),
        }
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, redactor, _path=_path)
    children = child_items(value)
    if children is not None:
        return {
            name: to_jsonable(child, redactor, _path=(*_path, name)) for name, child in children
        }
    if is_array(value):
        return to_jsonable(value.tolist(), redactor, _path=_path)  # type: ignore[attr-defined]
    if isinstance(value, list | tuple):
        return [to_jsonable(item, redactor, _path=_path) for item in value]
    if isinstance(value, set | frozenset):
        return [to_jsonable(item, redactor, _path=_path) for item in sorted(value, key=_sort_key)]
    text = scalar_text(value)
    if text is not None:
        return redactor.scrub(text)
    return describe(value)


def dumps_json(document: object) -> str:
    """Indented, key-order-preserving JSON; non-ASCII escaped so any byte sequence survives."""
    return json.dumps(document, indent=2, ensure_ascii=True, allow_nan=False, default=str)


# --------------------------------------------------------------------------- artifact names


_UNSAFE_NAME_CHAR = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")


def safe_artifact_path(name: str) -> str:
    """A relative path inside the run's artifact folder derived from ``name``; never escapes it."""
    parts = []
    for part in _UNSAFE_NAME_CHAR.sub("_", clean_text(name)).split("/"):
        part = part.strip()
        if not part or part == ".":
            continue
        parts.append(_fit_name("_" * len(part) if set(part) == {"."} else part))
    return "/".join(parts) or "artifact"


_MAX_NAME_BYTES = 200


def _fit_name(part: str) -> str:
    """``part`` if file systems take it (255 bytes a name), else its start, a digest, its suffix."""
    if len(part.encode("utf-8")) <= _MAX_NAME_BYTES:
        return part
    suffix = posixpath.splitext(part)[1]
    tail = f"~{key_digest(part)}{suffix if len(suffix) <= 16 else ''}"
    head = part.encode("utf-8")[: _MAX_NAME_BYTES - len(tail.encode("utf-8"))]
    return head.decode("utf-8", "ignore").rstrip() + tail
