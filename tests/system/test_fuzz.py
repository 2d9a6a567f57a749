"""Bad input, fuzzed: whatever a pipeline passes or returns, tracking never raises into it.

Pure mapping properties run many examples without a store; store-backed properties log the
generated configs and return values into a real SQLite store (non-strict, warnings recorded)
and read everything back: every param, metric and tag the mapping produced is stored as
mapped, the rest is kept whole in ``config.json``, and artifact names built from user input
stay inside the run's artifact folder.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import shutil
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import (
    _validate_metric_name,
    _validate_param_name,
    _validate_tag_name,
)

from emstrack import EmstrackWarning, tracked_optimization, tracked_run
from emstrack._delivery.spool import SpoolEntry
from emstrack._settings import secret_pattern
from emstrack._tracking.mapping import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    Redactor,
    clean_text,
    dumps_json,
    fit_value,
    format_float,
    map_outputs,
    map_params,
    maps_cleanly,
    mlflow_key,
    safe_artifact_path,
    secret_values,
    to_jsonable,
)

TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _fuzz_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print how many generated cases each property tried."""
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nfuzz cases tried: {sum(TRIED.values())} {dict(TRIED)}")


def tried(name: str) -> None:
    TRIED[name] += 1


PURE = settings(max_examples=300, deadline=None)
STORE = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STORE_SLOW = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --------------------------------------------------------------------------- strategies

NASTY_CHARS = st.sampled_from(
    [
        "/",
        ".",
        "..",
        " ",
        "\x00",
        "\n",
        "\t",
        "\r",
        "\x7f",
        "\ud800",
        "\udfff",
        "é",
        "ß",
        "日",
        "\u200b",
        "\ufeff",
        "💡",
        ":",
        "\\",
        "%",
        "'",
        '"',
        "-",
        "_",
        "*",
        "?",
        "<",
        ">",
        "|",
    ]
)
ANY_CHAR = st.characters(exclude_categories=())  # includes lone surrogates (category Cs)

KEYS = st.one_of(
    st.sampled_from(
        [
            "a/b",
            "../x",
            "a//b",
            "./a",
            "/lead",
            "trail/",
            ".hidden",
            "trail.",
            " space ",
            "..",
            ".",
            "",
            "a b",
            "ключ",
            "x\x00y",
            "\ud800",
            "tab\tkey",
            "key\n",
            "a/../b",
            "mlflow",
            "-",
            "x" * 250,
            "y" * 251,
        ]
    ),
    st.lists(NASTY_CHARS | st.text(max_size=4), max_size=8).map("".join),
    st.text(ANY_CHAR, max_size=30),
    st.text(ANY_CHAR, min_size=240, max_size=300),
)

SPECIAL_FLOATS = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        1e308,
        -1e308,
        1.7976931348623157e308,
        5e-324,
        -5e-324,
        1e-300,
        2.0**53 + 2,
        -0.0,
        0.1,
        1 / 3,
    ]
)
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), SPECIAL_FLOATS)
TEXTS = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.text(ANY_CHAR, min_size=1, max_size=12).map(lambda t: (t * 10_000)[:10_000]),
)
SCALARS = st.one_of(
    FLOATS,
    st.integers(min_value=-(2**63), max_value=2**63),
    st.booleans(),
    st.none(),
    TEXTS,
)


def deep(depth: int, leaf: Any) -> dict[str, Any]:
    value: Any = leaf
    for level in range(depth):
        value = {f"level{level % 7}": value}
    return value


VALUES = st.recursive(
    SCALARS | st.lists(FLOATS, max_size=5),
    lambda children: st.dictionaries(KEYS, children, max_size=5) | st.lists(children, max_size=3),
    max_leaves=25,
)
CONFIGS = st.one_of(
    st.dictionaries(KEYS, VALUES, max_size=12),
    st.builds(lambda d, leaf: {"deep": deep(d, leaf)}, st.integers(30, 120), SCALARS),
)
OUTPUTS = st.dictionaries(
    KEYS,
    st.one_of(
        FLOATS,
        st.integers(-(2**63), 2**63),
        st.sampled_from([10**400, -(10**400), 2**1024 - 1, 2**1023]),
        st.booleans(),
        TEXTS,
        st.lists(FLOATS | st.sampled_from([10**400, 7]), max_size=30),
    ),
    max_size=15,
)


def redactor() -> Redactor:
    return Redactor.from_environ(secret_pattern(), os.environ)


def valid_for_mlflow(key: str) -> bool:
    try:
        _validate_param_name(key)
        _validate_metric_name(key)
        _validate_tag_name(key)
    except MlflowException:
        return False
    return len(key) <= MAX_KEY_LENGTH


def pair_surrogates(value: Any) -> Any:
    """``value`` as JSON reads it back: two lone surrogates in a row become one character."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
    if isinstance(value, dict):
        return {pair_surrogates(k): pair_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pair_surrogates(item) for item in value]
    return value


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# --------------------------------------------------------------------------- pure properties


class TestKeys:
    @PURE
    @given(KEYS | st.text(ANY_CHAR))
    def test_mapped_key_is_valid_for_mlflow(self, key):
        """Every key maps onto one MLflow's own validators accept, the same way each time."""
        tried("key valid")
        mapped = mlflow_key(key)
        assert valid_for_mlflow(mapped), (key, mapped)
        assert mlflow_key(key) == mapped
        assert mlflow_key(mapped) == mapped

    @PURE
    @given(KEYS | st.text(ANY_CHAR))
    def test_keys_mlflow_accepts_are_kept(self, key):
        """A key MLflow accepts, made of the characters it documents, stays unchanged."""
        tried("key kept")
        if valid_for_mlflow(key) and re.fullmatch(r"[/\w.\- :]+", key):
            assert mlflow_key(key) == key

    @PURE
    @given(st.lists(KEYS | st.text(ANY_CHAR, max_size=6), min_size=2, max_size=12, unique=True))
    def test_different_keys_never_collide(self, keys):
        """Different keys map onto different keys."""
        tried("key injective")
        assert len({mlflow_key(key) for key in keys}) == len(keys)

    @PURE
    @given(st.lists(KEYS | st.text(ANY_CHAR, max_size=6), min_size=2, max_size=12, unique=True))
    @example(["a\x00", "a\\x00"])
    @example(["\ud800", "\\ud800"])
    def test_flat_params_with_different_keys_are_all_logged(self, keys):
        """A flat mapping with distinct keys logs every key, none reported as taken."""
        tried("params injective")
        mapped = map_params({key: index for index, key in enumerate(keys)}, redactor())
        assert mapped.unlogged == {}
        assert len(mapped.params) == len(keys)


class TestValues:
    @PURE
    @given(FLOATS)
    def test_format_float_round_trips(self, value):
        """The canonical text of a float reads back as the same float."""
        tried("format_float")
        text = format_float(value)
        assert same_float(float(text), value)
        assert format_float(float(text)) == text
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            assert text == str(int(value))

    @PURE
    @given(TEXTS | KEYS)
    def test_clean_text_is_storable(self, text):
        """Cleaned text has no NUL and encodes as UTF-8; clean text is left alone."""
        tried("clean_text")
        cleaned = clean_text(text)
        assert "\x00" not in cleaned
        cleaned.encode("utf-8")
        assert clean_text(cleaned) == cleaned

    @PURE
    @given(TEXTS, st.sampled_from([MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH, 100]))
    def test_fit_value_respects_the_limit(self, text, limit):
        """A value is cut to the limit with a marker, or left whole when it fits."""
        tried("fit_value")
        fitted = fit_value(text, limit)
        assert len(fitted) <= limit
        assert fitted == text if len(text) <= limit else fitted.endswith("config.json]")

    @PURE
    @given(CONFIGS)
    def test_params_are_always_valid_for_mlflow(self, config):
        """Any config maps onto valid param keys and values within MLflow's limits."""
        tried("map_params")
        mapped = map_params(config, redactor())
        for key, value in mapped.params.items():
            assert valid_for_mlflow(key)
            assert len(value) <= MAX_PARAM_VALUE_LENGTH
            assert "\x00" not in value
            value.encode("utf-8")

    @PURE
    @given(OUTPUTS | CONFIGS)
    def test_outputs_are_always_valid_for_mlflow(self, outputs):
        """Any return value maps onto valid metrics (never ±inf) and tags."""
        tried("map_outputs")
        mapped = map_outputs(outputs, redactor())
        for key, value, step in mapped.metrics:
            assert valid_for_mlflow(key)
            assert not math.isinf(value)
            assert isinstance(step, int)
        for key, value in mapped.tags.items():
            assert valid_for_mlflow(key)
            assert len(value) <= MAX_TAG_VALUE_LENGTH
            value.encode("utf-8")

    @PURE
    @given(CONFIGS | OUTPUTS)
    def test_config_json_always_serialises(self, config):
        """Any config becomes strict JSON (no NaN literals) that reads back unchanged."""
        tried("config json")
        document = to_jsonable(config, redactor())
        text = dumps_json(document)
        text.encode("ascii")
        assert json.loads(text) == pair_surrogates(document)


class TestArtifactNames:
    @PURE
    @given(
        KEYS
        | st.text(ANY_CHAR)
        | st.lists(st.sampled_from(["..", ".", "/", "a", "\\"])).map("".join)
    )
    def test_artifact_name_never_escapes(self, name):
        """A name from user input becomes a clean relative path inside the artifact folder."""
        tried("artifact name")
        path = safe_artifact_path(name)
        assert path
        assert not path.startswith("/")
        assert posixpath.normpath(path) == path
        assert ".." not in path.split("/")
        assert "\x00" not in path
        assert "\\" not in path
        root = Path("/run/artifacts")
        assert (root / path).resolve().is_relative_to(root)


# --------------------------------------------------------------------------- against a store


def read_back(store: Any, run_id: str) -> tuple[Any, dict[str, Any]]:
    run = store.client.get_run(run_id)
    config_path = store.artifact_root(run_id) / "config.json"
    document = json.loads(config_path.read_text()) if config_path.exists() else {}
    return run, document


def check_stored(store: Any, run_id: str, params: Any, outputs: Any, inputs: Any) -> None:
    """Everything the mapping produced is in the store; the rest is whole in config.json."""
    run, document = read_back(store, run_id)
    # A run learns the secrets it meets (secret-named values, URL passwords) and scrubs them
    # from every later text: expect the same.
    learned = redactor().learn(secret_values(inputs, redactor()))
    mapped_params = map_params(params, learned)
    learned = learned.learn(mapped_params.secrets)
    mapped_outputs = map_outputs(outputs, learned)
    everything = learned.learn(mapped_outputs.secrets)
    for key, value in mapped_params.params.items():
        assert run.data.params[key] == value, key
    latest: dict[str, tuple[int, float]] = {}
    for key, value, step in mapped_outputs.metrics:
        if key not in latest or step >= latest[key][0]:
            latest[key] = (step, value)
    assert set(run.data.metrics) == set(latest)
    for key, (_, value) in latest.items():
        assert same_float(run.data.metrics[key], value), key
    for key, value in mapped_outputs.tags.items():
        assert run.data.tags[key] == value, key
    for key in mapped_outputs.nonfinite:
        assert run.data.tags[mlflow_key("emstrack.nonfinite." + key)]
    expected_inputs = everything.scrub_tree(to_jsonable(inputs, learned))
    assert document["inputs"] == pair_surrogates(expected_inputs)
    mapping = document.get("mapping", {})
    for key, whole in {**mapped_params.cut, **mapped_outputs.cut}.items():
        assert mapping["cut_values"][key] == pair_surrogates(everything.scrub(whole))
    for key, original in {**mapped_params.renamed, **mapped_outputs.renamed}.items():
        assert mapping["renamed_keys"][key] == pair_surrogates(original)
    for key in {**mapped_params.unlogged, **mapped_outputs.unlogged}:
        assert pair_surrogates(key) in mapping["not_logged"]


def untracked_calls(store: Any, params: dict[str, Any], outputs: Any) -> str:
    """Log ``params`` and ``outputs`` through the decorator; return the run id."""
    runs_before = {run.info.run_id for run in store.runs("fuzz")}

    @tracked_optimization(experiment="fuzz")
    def pipeline(**config: Any) -> Any:
        return outputs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pipeline(**params)
    assert result is outputs
    assert all(issubclass(w.category, EmstrackWarning) for w in caught), [
        str(w.message) for w in caught
    ]
    (run_id,) = {run.info.run_id for run in store.runs("fuzz")} - runs_before
    assert store.spooled() == []
    return run_id


def check_decorated(store: Any, config: dict[str, Any], outputs: Any) -> str:
    """Call a decorated pipeline with ``config``; check what was stored; return the run id."""
    run_id = untracked_calls(store, config, outputs)
    cleanly = {key: value for key, value in config.items() if maps_cleanly(value)}
    check_stored(store, run_id, cleanly, outputs, config)
    return run_id


def check_tracked_run(store: Any, config: dict[str, Any], outputs: Any) -> None:
    """Log ``config`` and ``outputs`` through tracked_run; check what was stored."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tracked_run("fuzz", experiment="fuzz", params=config) as run:
            run.log_metrics(outputs)
    assert all(issubclass(w.category, EmstrackWarning) for w in caught)
    check_stored(store, run.run_id, config, outputs, config)


class TestStored:
    @STORE
    @given(config=st.dictionaries(KEYS, VALUES, max_size=10), outputs=OUTPUTS)
    def test_decorated_pipeline_with_bad_input(self, store, monkeypatch, config, outputs):
        """Nasty arguments and return values: same result back, all storable values stored."""
        tried("store: decorator")
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        run_id = check_decorated(store, config, outputs)
        assert store.client.get_run(run_id).info.status == "FINISHED"

    @STORE
    @given(config=CONFIGS, outputs=OUTPUTS | CONFIGS)
    @example(config={"\ud800\udc00": 1}, outputs={"\ud800\udc00": 0.0})
    def test_tracked_run_with_bad_input(self, store, monkeypatch, config, outputs):
        """tracked_run(params=...) and log_metrics with nasty values store what MLflow holds."""
        tried("store: tracked_run")
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        check_tracked_run(store, config, outputs)
        assert store.spooled() == []

    @STORE
    @given(names=st.lists(KEYS | st.text(ANY_CHAR, max_size=20), min_size=1, max_size=6))
    def test_artifact_names_stay_in_the_run_folder(self, store, monkeypatch, tmp_path, names):
        """Artifacts named from user input land inside the run's folder, nowhere else."""
        tried("store: artifact names")
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        experiment = f"names-{TRIED['store: artifact names']}"
        artifacts = tmp_path / experiment
        store.client.create_experiment(experiment, artifact_location=str(artifacts))
        outside_before = files_outside(tmp_path, artifacts)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            with tracked_run("names", experiment=experiment) as run:
                for index, name in enumerate(names):
                    run.log_text(f"content {index}", name)
        root = store.artifact_root(run.run_id).resolve()
        stored = {
            path.relative_to(root).as_posix(): path.read_text()
            for path in artifacts.rglob("*")
            if path.is_file() and path.resolve().is_relative_to(root)
        }
        assert len(stored) == sum(1 for path in artifacts.rglob("*") if path.is_file())
        last = {safe_artifact_path(name): index for index, name in enumerate(names)}
        # Each name's last content is stored; where a file and a folder would share a path,
        # the later one is renamed instead of leaving the run unfinished.
        assert sorted(stored.values()) == sorted(f"content {i}" for i in last.values())
        for path, index in last.items():
            assert stored.get(path, f"content {index}") == f"content {index}"
        assert store.client.get_run(run.run_id).info.status == "FINISHED"
        assert store.spooled() == []
        assert files_outside(tmp_path, artifacts) == outside_before


def files_outside(folder: Path, artifacts: Path) -> set[str]:
    """Files under ``folder`` that are not the store, its journal, the spool or ``artifacts``."""
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file()
        and not path.is_relative_to(artifacts)
        and not path.name.startswith("mlflow.db")
        and "spool" not in path.relative_to(folder).parts
    }


class TestManyMetrics:
    @settings(
        max_examples=3,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(pool=st.lists(FLOATS, min_size=1, max_size=64), stride=st.integers(1, 97))
    def test_five_thousand_metrics_at_once(self, store, monkeypatch, pool, stride):
        """5,000 metrics in one log_metrics: every finite one stored, ±inf as tags."""
        tried("store: 5000 metrics")
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        metrics = {f"m{index:04d}": pool[index * stride % len(pool)] for index in range(5000)}
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            with tracked_run("many", experiment="many") as run:
                run.log_metrics(metrics)
        stored = store.client.get_run(run.run_id)
        finite = {key: value for key, value in metrics.items() if not math.isinf(value)}
        assert set(stored.data.metrics) == set(finite)
        assert all(same_float(stored.data.metrics[key], value) for key, value in finite.items())
        infinite = {key for key, value in metrics.items() if math.isinf(value)}
        assert {key for key in stored.data.tags if key.startswith("emstrack.nonfinite.")} == {
            f"emstrack.nonfinite.{key}" for key in infinite
        }


@pytest.mark.slow
class TestStoredMore:
    @STORE_SLOW
    @given(config=st.dictionaries(KEYS, VALUES, max_size=10), outputs=OUTPUTS)
    def test_decorated_pipeline_with_bad_input(self, store, monkeypatch, config, outputs):
        """The decorator property with many more examples."""
        tried("store (slow): decorator")
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        check_decorated(store, config, outputs)

    @STORE_SLOW
    @given(config=CONFIGS, outputs=OUTPUTS | CONFIGS)
    def test_tracked_run_with_bad_input(self, store, monkeypatch, config, outputs):
        """The tracked_run property with many more examples."""
        tried("store (slow): tracked_run")
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        check_tracked_run(store, config, outputs)


MANY = settings(max_examples=1500, deadline=None)


@pytest.mark.slow
class TestPureMore:
    """The pure properties again, with many more examples."""

    @MANY
    @given(KEYS | st.text(ANY_CHAR))
    def test_mapped_key_is_valid_for_mlflow(self, key):
        """Every key maps onto a valid, stable key."""
        TestKeys.test_mapped_key_is_valid_for_mlflow.hypothesis.inner_test(self, key)

    @MANY
    @given(st.lists(KEYS | st.text(ANY_CHAR, max_size=6), min_size=2, max_size=12, unique=True))
    def test_flat_params_with_different_keys_are_all_logged(self, keys):
        """Distinct keys stay distinct through the whole param mapping."""
        TestKeys.test_flat_params_with_different_keys_are_all_logged.hypothesis.inner_test(
            self, keys
        )

    @MANY
    @given(CONFIGS)
    def test_params_are_always_valid_for_mlflow(self, config):
        """Any config maps onto valid params."""
        TestValues.test_params_are_always_valid_for_mlflow.hypothesis.inner_test(self, config)

    @MANY
    @given(OUTPUTS | CONFIGS)
    def test_outputs_are_always_valid_for_mlflow(self, outputs):
        """Any return value maps onto valid metrics and tags."""
        TestValues.test_outputs_are_always_valid_for_mlflow.hypothesis.inner_test(self, outputs)

    @MANY
    @given(
        KEYS
        | st.text(ANY_CHAR)
        | st.lists(st.sampled_from(["..", ".", "/", "a", "\\"])).map("".join)
    )
    def test_artifact_name_never_escapes(self, name):
        """Names from user input stay inside the artifact folder."""
        TestArtifactNames.test_artifact_name_never_escapes.hypothesis.inner_test(self, name)


# ------------------------------------------------------------------- hostile classes (issue 9)


class _RaisingStr:
    def __str__(self) -> str:
        raise ZeroDivisionError("str refused")

    def __hash__(self) -> int:
        return 7


class _RaisingRepr(_RaisingStr):
    def __repr__(self) -> str:
        raise RuntimeError("repr refused")


class _RaisingFormat(_RaisingRepr):
    def __format__(self, spec: str) -> str:
        raise ValueError("format refused")


RAISING = st.sampled_from([_RaisingStr, _RaisingRepr, _RaisingFormat]).map(lambda cls: cls())
ODD_NUMBERS = st.one_of(
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.sampled_from(
        [
            10**400,
            -(10**400),
            2**1024,
            -0.0,
            Decimal("-0"),
            Decimal("1E+400"),
            np.float16(65504),
            np.float32("nan"),
            np.int64(-(2**63)),
            np.uint64(2**64 - 1),
            np.complex128(1 - 2j),
            np.bool_(True),
            np.array(3.5),
            np.zeros((2, 2)),
        ]
    ),
)
SECRET_KEYS = st.sampled_from(
    [
        "db_password",
        "PASSWORD",
        "api-key",
        "API_KEY",
        "pwd",
        "access_key",
        "Authorization",
        "auth_header",
        "github_token",
        "client_secret",
        "private-key",
    ]
)
# Secret values carry a marker the test greps for; 4+ characters, like real ones.
SECRET_TEXTS = st.text(st.characters(categories=["L", "N"]), min_size=4, max_size=12).map(
    lambda t: f"SECRET{t}"
)
HOSTILE_LEAVES = st.one_of(RAISING, ODD_NUMBERS, SCALARS)
HOSTILE_VALUES = st.recursive(
    HOSTILE_LEAVES,
    lambda children: st.one_of(
        st.dictionaries(KEYS, children, max_size=4),
        st.dictionaries(
            RAISING | ODD_NUMBERS.filter(lambda v: not _unhashable(v)), children, max_size=2
        ),
        st.lists(children, max_size=3),
        st.frozensets(RAISING | st.integers(), max_size=3),
    ),
    max_leaves=12,
)
HOSTILE_CONFIGS = st.dictionaries(KEYS, HOSTILE_VALUES, max_size=8)


def _unhashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return True
    return False


VALID_EVENTS = [
    b'{"e":"params","params":{"n":"1"}}',
    b'{"e":"metrics","metrics":[["cost",1.5,0,1700000000000]]}',
    b'{"e":"tags","tags":{"t":"v"}}',
]
CORRUPT_LINES = st.one_of(
    st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b),
    st.sampled_from(
        [
            b"\x00\xffgarbage{{{",
            b'{"e":"metrics","metrics":5}',
            b'{"e":"metrics","metrics":[["x","y",0,0]]}',
            b'{"e":"params","params":{"a":1}}',
            b'{"e":"end","status":"DONE","end_ms":1}',
            b'{"e":"artifact"}',
            b'{"e":"unknown"}',
            b"[1,2,3]",
            b"null",
            b'{"e":"tags","tags":{"a":"b"}',
        ]
    ),
)


def secret_marked(text: str) -> bool:
    return "SECRET" in text


class TestHostilePure:
    @PURE
    @given(HOSTILE_CONFIGS)
    def test_raising_and_odd_values_never_raise(self, config):
        """Objects whose str/repr/format raise, and odd numbers, map without raising."""
        tried("hostile: mapping")
        params = map_params(config, redactor())
        outputs = map_outputs(config, redactor())
        for key in [*params.params, *outputs.tags, *(k for k, _, _ in outputs.metrics)]:
            assert valid_for_mlflow(key), key
        dumps_json(to_jsonable(config, redactor()))
        maps_cleanly(config)

    @PURE
    @given(st.dictionaries(SECRET_KEYS, SECRET_TEXTS, min_size=1, max_size=4), TEXTS)
    def test_secret_values_never_reach_params_or_tags(self, secrets, noise):
        """A secret-named value is *** as a param; once learned, it is scrubbed from any text."""
        tried("hostile: secrets")
        mapped = map_params(
            {**secrets, "url": f"postgresql://u:{next(iter(secrets.values()))}@h/d"}, redactor()
        )
        assert not any(secret_marked(v) for v in mapped.params.values()), mapped.params
        learned = redactor().learn(mapped.secrets)
        for secret in secrets.values():
            assert not secret_marked(learned.scrub(f"{noise}{secret}{noise}").replace(noise, ""))
        outputs = map_outputs({"message": " ".join(secrets.values()) + noise}, learned)
        assert not any(secret_marked(v) for v in outputs.tags.values())

    @PURE
    @given(st.lists(st.one_of(CORRUPT_LINES, st.sampled_from(VALID_EVENTS)), max_size=12))
    def test_corrupt_lines_are_skipped_and_kept(self, lines):
        """Valid events are read in order; every other line is kept aside, nothing raises."""
        tried("hostile: spool lines")
        folder = Path(tempfile.mkdtemp(prefix="fuzz-spool-")) / "0000000000001-key"
        folder.mkdir()
        start = b'{"e":"start","v":1,"key":"key","uri":"sqlite:///x","experiment":"e","start_ms":1}'
        (folder / "run.jsonl").write_bytes(b"\n".join([start, *lines]) + b"\n")
        try:
            entry = SpoolEntry(folder)
            events, _ = entry.read_events()
            expected = [json.loads(line) for line in lines if line in VALID_EVENTS]
            assert events[1:] == expected
            assert entry.start_event()["key"] == "key"
            corrupt = [line for line in lines if line not in VALID_EVENTS]
            assert all(any(kept in line for line in corrupt) for kept in entry.unreadable)
            assert bool(entry.unreadable) == any(line.strip() for line in corrupt)
        finally:
            shutil.rmtree(folder.parent, ignore_errors=True)


def check_hostile_pipeline(store: Any, config: dict[str, Any], secrets: dict[str, str]) -> None:
    """A decorated pipeline fed hostile arguments and secrets, failing with the secrets."""
    runs_before = len(store.runs("hostile-fuzz"))

    @tracked_optimization(experiment="hostile-fuzz")
    def pipeline(config: dict[str, Any], creds: dict[str, str], fail: bool) -> Any:
        if fail:
            raise RuntimeError("failed with " + " ".join(creds.values()))
        return {"cost": 1.0, "echo": " ".join(creds.values())}

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert pipeline(config, secrets, False)["cost"] == 1.0
        with pytest.raises(RuntimeError):
            pipeline(config, secrets, True)
    runs = store.runs("hostile-fuzz")[runs_before:]
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    assert store.spooled() == []
    for secret in secrets.values():
        needle = secret.encode()
        assert not [p for p in store.root.rglob("*") if p.is_file() and needle in p.read_bytes()]


class TestHostileStored:
    @STORE
    @given(
        config=HOSTILE_CONFIGS,
        secrets=st.dictionaries(SECRET_KEYS, SECRET_TEXTS, min_size=1, max_size=3),
    )
    def test_hostile_arguments_and_secrets(self, store, monkeypatch, config, secrets):
        """Raising objects and odd numbers as arguments: tracked; secrets nowhere on disk."""
        tried("store: hostile")
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        check_hostile_pipeline(store, config, secrets)


@pytest.mark.slow
class TestHostileMore:
    @MANY
    @given(HOSTILE_CONFIGS)
    def test_raising_and_odd_values_never_raise(self, config):
        """The hostile mapping property with many more examples."""
        TestHostilePure.test_raising_and_odd_values_never_raise.hypothesis.inner_test(self, config)

    @MANY
    @given(st.lists(st.one_of(CORRUPT_LINES, st.sampled_from(VALID_EVENTS)), max_size=30))
    def test_corrupt_lines_are_skipped_and_kept(self, lines):
        """The corrupt-spool property with many more examples."""
        TestHostilePure.test_corrupt_lines_are_skipped_and_kept.hypothesis.inner_test(self, lines)

    @STORE_SLOW
    @given(
        config=HOSTILE_CONFIGS,
        secrets=st.dictionaries(SECRET_KEYS, SECRET_TEXTS, min_size=1, max_size=3),
    )
    def test_hostile_arguments_and_secrets(self, store, monkeypatch, config, secrets):
        """The hostile store property with many more examples."""
        tried("store (slow): hostile")
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        check_hostile_pipeline(store, config, secrets)
