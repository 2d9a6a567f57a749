"""``@tracked_optimization``: every call of a pipeline function becomes one MLflow run.

Built on ``wrapt``, so the wrapper is transparent: ``__name__``, ``__doc__``,
``inspect.signature`` and ``inspect.iscoroutinefunction`` are the wrapped function's, and it
binds like the original on methods, classmethods and staticmethods. Applying it from outside,
``tracked_optimization(...)(module.func)``, is the same as ``@``. The wrapper pickles and copies
as a function does (see :mod:`emstrack._tracking.wrapper`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import inspect
import re
import string
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from .. import _guard, _settings
from .._errors import ConfigurationError, TrackingError, describe
from .mapping import Redactor, maps_cleanly, scalar_text, secret_values
from .mapping import describe as describe_value
from .run import Run
from .wrapper import TrackedFunction

F = TypeVar("F", bound=Callable[..., Any])

_EXTRA_FIELDS = frozenset({"timestamp", "date", "func"})
#: Widest field a template may ask for (``{n:>500000}`` is a mistake, not a run name).
_MAX_TEMPLATE_WIDTH = 250


class _TemplateFormatter(string.Formatter):
    """Fills ``{name}`` with canonical text (``true``, ``7``), ``{name:spec}`` with ``format``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec:
            return format(value, format_spec)
        text = scalar_text(value)
        return text if text is not None else str(value)


_formatter = _TemplateFormatter()


@dataclass(frozen=True, slots=True)
class _Options:
    experiment: str | None
    run_name: str | Callable[..., str] | None
    params: type[Any] | Callable[..., Any] | None
    metrics: type[Any] | Callable[[Any], Any] | None
    artifacts: tuple[str, ...]
    tags: Mapping[str, object] | None
    enabled: bool | Callable[[], bool]
    nested: bool | None
    tracking_uri: str | None
    log_inputs: bool
    log_model: Literal["lp", "mps"] | None


class _Plan:
    """What to do around each call, checked once when the decorator is applied."""

    def __init__(self, function: Callable[..., Any], options: _Options) -> None:
        self.options = options
        self.function = function
        target = function.__func__ if isinstance(function, classmethod | staticmethod) else function
        self.qualname = getattr(target, "__qualname__", getattr(target, "__name__", "pipeline"))
        self.name = getattr(target, "__name__", "pipeline")
        try:
            self.signature: inspect.Signature | None = inspect.signature(target)
        except (TypeError, ValueError):
            self.signature = None
        parameters = self.signature.parameters if self.signature else {}
        self.names = frozenset(parameters)
        self.takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        self._bound_signature: inspect.Signature | None = None
        if self.signature is not None and self.signature.parameters:
            _, *rest = self.signature.parameters.values()
            self._bound_signature = self.signature.replace(parameters=rest)
        self._check()
        self.recorded_tags = _recording_tags(function, options)

    # ------------------------------------------------------------------ decoration-time checks

    def _check(self) -> None:
        options = self.options
        if options.experiment is not None and not (
            isinstance(options.experiment, str) and options.experiment.strip()
        ):
            raise ConfigurationError(
                f"experiment={options.experiment!r}: an experiment needs a name; leave it out "
                "to use MLFLOW_EXPERIMENT_NAME, else 'Default'"
            )
        if isinstance(options.run_name, str):
            self._check_template("run_name", options.run_name)
        for index, artifact in enumerate(options.artifacts):
            self._check_template(f"artifacts[{index}]", artifact)
        if isinstance(options.params, type):
            self._check_params_model(options.params)
        elif options.params is not None:
            self._check_callable("params", options.params)
        if callable(options.run_name):
            self._check_callable("run_name", options.run_name)
        if options.metrics is not None and not callable(options.metrics):
            raise ConfigurationError(
                f"metrics= must be a pydantic model class or a callable, not {options.metrics!r}"
            )

    def _check_template(self, option: str, template: str) -> None:
        try:
            parsed = [
                (name, spec or "")
                for _, name, spec, _ in _formatter.parse(template)
                if name is not None
            ]
        except ValueError as error:
            raise ConfigurationError(
                f"{option}={template!r} is not a valid template: {error}"
            ) from error
        for field, spec in parsed:
            base = field.split(".", 1)[0].split("[", 1)[0]
            if not base or base.isdigit():
                raise ConfigurationError(
                    f"{option}={template!r}: use named fields such as {{building_id}}, "
                    f"not {{{field}}}"
                )
            if any(part.startswith("_") for part in re.split(r"[.\[\]]+", field)[1:]):
                raise ConfigurationError(
                    f"{option}={template!r}: {{{field}}} reaches into a private or special "
                    f"attribute; templates take parameters and their public attributes such as "
                    f"{{{base}}} or {{{base}.name}} (use a callable run_name for anything else)"
                )
            if "{" in spec or any(int(n) > _MAX_TEMPLATE_WIDTH for n in re.findall(r"\d+", spec)):
                raise ConfigurationError(
                    f"{option}={template!r}: the format spec {spec!r} of {{{field}}} is not "
                    f"allowed (no nested fields, widths and precisions up to "
                    f"{_MAX_TEMPLATE_WIDTH})"
                )
            if base not in self.names and base not in _EXTRA_FIELDS and not self.takes_kwargs:
                raise ConfigurationError(
                    f"{option}={template!r}: {{{base}}} is not a parameter of {self.qualname}"
                    f"{tuple(sorted(self.names))} nor one of {sorted(_EXTRA_FIELDS)}"
                )

    def _check_params_model(self, model: type[Any]) -> None:
        fields = getattr(model, "model_fields", None)
        if not isinstance(model, type) or fields is None:
            raise ConfigurationError(f"params= must be a pydantic model class, not {model!r}")
        if self.signature is None or self.takes_kwargs:
            return
        if any(
            self._annotation_is(p.annotation, model) for p in self.signature.parameters.values()
        ):
            return
        for field_name, info in fields.items():
            if info.is_required() and field_name not in self.names:
                raise ConfigurationError(
                    f"params={model.__name__}: required field {field_name!r} is not a parameter "
                    f"of {self.qualname}{self.signature}"
                )

    def _check_callable(self, option: str, function: Callable[..., Any]) -> None:
        if not callable(function):
            raise ConfigurationError(
                f"{option}= must be a pydantic model class or a callable, not {function!r}"
            )
        if self.signature is None or self.takes_kwargs:
            return
        for name, parameter in _parameters(function).items():
            required = parameter.default is inspect.Parameter.empty and parameter.kind in {
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.KEYWORD_ONLY,
            }
            if required and name not in self.names:
                raise ConfigurationError(
                    f"{option}={getattr(function, '__name__', function)!r} needs {name!r}, "
                    f"which is not a parameter of {self.qualname}{self.signature}"
                )

    @staticmethod
    def _annotation_is(annotation: object, model: type[Any]) -> bool:
        if annotation is model:
            return True
        return isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] == model.__name__

    # ------------------------------------------------------------------ call time

    def enabled(self) -> bool:
        if _settings.disabled():
            return False
        enabled = self.options.enabled
        return enabled() if callable(enabled) else enabled

    def arguments(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        signature = self._bound_signature if instance is not None else self.signature
        if signature is None:
            return {f"arg{i}": value for i, value in enumerate(args)} | dict(kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            else:
                arguments[name] = value
        return arguments

    def start(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Run, list[str | None]]:
        """Open the call's run; also return the artifact paths to log after the call."""
        options = self.options
        now = dt.datetime.now(dt.UTC)
        try:
            arguments = self.arguments(instance, args, kwargs)
        except TypeError:
            # The call itself will raise the same TypeError; track it with what we have.
            arguments = {}
        fields = {
            "timestamp": now.strftime("%Y%m%d-%H%M%S"),
            "date": now.strftime("%Y-%m-%d"),
            "func": self.name,
            **arguments,  # a parameter named like an extra field (a day's ``date``) wins
        }
        problems: list[str] = []
        name = self._run_name(fields, problems)
        run = Run(
            name,
            experiment=options.experiment,
            tags={
                **self.recorded_tags,
                **(options.tags or {}),
                "emstrack.function": self.qualname,
            },
            nested=options.nested,
            tracking_uri=options.tracking_uri,
            source=self.qualname,
            log_model=options.log_model,
            known_secrets=secret_values(
                arguments, Redactor.from_environ(_settings.secret_pattern(), {})
            ),
        )
        run.__enter__()
        artifacts: list[str | None] = []
        try:
            for problem in problems:
                run.record_problem(problem)
            params = self._params(arguments, run)
            run.log_params(params)
            if options.log_inputs:
                run.log_config(params if options.params is not None else arguments)
                run.record_call(arguments)
            artifacts = [self._fill(template, fields, run) for template in options.artifacts]
        except Exception as error:
            # Describing the call failed (a strange argument): that is tracking's problem, not
            # the pipeline's. The call is still tracked with what could be described; in
            # strict mode the run ends and the TrackingError propagates.
            try:
                if not isinstance(error, TrackingError):
                    run.record_problem(f"describing the call failed: {describe(error)}")
                else:
                    raise
            except TrackingError:
                with contextlib.suppress(TrackingError):
                    run.__exit__(None, None, None)
                raise
        except BaseException as exc:
            run.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return run, artifacts

    def _run_name(self, fields: dict[str, Any], problems: list[str]) -> str:
        run_name = self.options.run_name
        try:
            if run_name is None:
                return self.name
            if callable(run_name):
                return str(_call_with(run_name, fields))
            return _formatter.vformat(run_name, (), fields)
        except Exception as error:
            problems.append(f"run_name could not be filled: {type(error).__name__}: {error}")
            return self.name

    def _fill(self, template: str, fields: dict[str, Any], run: Run) -> str | None:
        try:
            return _formatter.vformat(template, (), fields)
        except Exception as error:
            run.record_problem(f"artifact path {template!r} could not be filled: {error}")
            return None

    def _params(self, arguments: dict[str, Any], run: Run) -> Any:
        model = self.options.params
        if model is None:
            params, left_out = {}, {}
            for name, value in arguments.items():
                if maps_cleanly(value):
                    params[name] = value
                else:
                    left_out[name] = f"not a param value: {describe_value(value)}"
            if left_out:
                run.note_not_params(left_out)
            return params
        if not isinstance(model, type):
            try:
                return _call_with(model, arguments)
            except Exception as error:
                run.record_problem(
                    f"params= callable failed ({describe(error)}); "
                    "logged the arguments as given instead"
                )
                return arguments
        schema: Any = model
        for value in arguments.values():
            if isinstance(value, schema):
                return value
        try:
            return schema.model_validate(
                {name: value for name, value in arguments.items() if name in schema.model_fields}
            )
        except Exception as error:
            run.record_problem(
                f"params did not validate against {model.__name__} ({describe(error)}); "
                "logged the arguments as given instead"
            )
            return arguments

    def finish(self, run: Run, artifacts: list[str | None], result: Any) -> None:
        metrics = self.options.metrics
        try:
            if metrics is None:
                value = result
            elif isinstance(metrics, type) and hasattr(metrics, "model_validate"):
                value = _validate_outputs(metrics, result)
            else:
                value = metrics(result)
        except Exception as error:
            run.record_problem(f"metrics could not be extracted: {describe(error)}")
        else:
            run.log_metrics(value)
        self.log_artifacts(run, artifacts, complain=True)

    def log_artifacts(self, run: Run, artifacts: list[str | None], *, complain: bool) -> None:
        for path_text in artifacts:
            if path_text is None:
                continue
            path = Path(path_text)
            if path.is_dir():
                run.log_artifacts(path)
            elif path.is_file():
                run.log_artifact(path)
            elif complain:
                run.record_problem(f"artifact {path_text!r} does not exist after the call")


def _recording_tags(function: Callable[..., Any], options: _Options) -> dict[str, str]:
    """The function's import path and options, for ``emstrack rerun`` (never fails)."""
    try:
        from .._reproduce.recording import tags_for

        return tags_for(function, options)
    except Exception:
        return {}


def _parameters(function: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    if isinstance(function, types.FunctionType):
        return _function_parameters(function)
    return _read_parameters(function)  # a bound method or callable object: not kept alive


@functools.lru_cache(maxsize=256)
def _function_parameters(function: types.FunctionType) -> Mapping[str, inspect.Parameter]:
    """A ``params=``/``metrics=`` function's parameters, read once (every call passes them)."""
    return _read_parameters(function)


def _read_parameters(function: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    try:
        return types.MappingProxyType(dict(inspect.signature(function).parameters))
    except (TypeError, ValueError):
        return types.MappingProxyType({})


def _call_with(function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Call ``function`` with the arguments it names (all of them if it takes ``**kwargs``)."""
    parameters = _parameters(function)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return function(**arguments)
    return function(**{name: arguments[name] for name in parameters if name in arguments})


def _validate_outputs(model: type[Any], result: Any) -> Any:
    if isinstance(result, model):
        return result
    if isinstance(result, Mapping):
        return model.model_validate(dict(result))
    if isinstance(result, tuple) and not hasattr(result, "_asdict"):
        return model.model_validate(dict(zip(model.model_fields, result, strict=False)))
    return model.model_validate(result, from_attributes=True)


def _make_wrapper(plan: _Plan, is_async: bool) -> Callable[..., Any]:
    def start(
        instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Run, list[str | None]] | None:
        try:
            return plan.start(instance, args, kwargs)
        except Exception as error:
            _guard.fail(f"emstrack: {plan.qualname} runs untracked: {describe(error)}", cause=error)
            return None

    def run_sync(wrapped: Callable[..., Any], instance: object, args: Any, kwargs: Any) -> Any:
        if not plan.enabled():
            return wrapped(*args, **kwargs)
        started = start(instance, args, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        run, artifacts = started
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            plan.log_artifacts(run, artifacts, complain=False)
            run.__exit__(type(exc), exc, exc.__traceback__)
            raise
        _finish(run, artifacts, result)
        return result

    def _finish(run: Run, artifacts: list[str | None], result: Any) -> None:
        """Log the result and end the run; a strict-mode error propagates only once it ended."""
        try:
            plan.finish(run, artifacts, result)
        except BaseException:
            with contextlib.suppress(TrackingError):
                run.__exit__(None, None, None)
            raise
        run.__exit__(None, None, None)

    async def _run_async(
        wrapped: Callable[..., Awaitable[Any]], instance: object, args: Any, kwargs: Any
    ) -> Any:
        started = start(instance, args, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        run, artifacts = started
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            plan.log_artifacts(run, artifacts, complain=False)
            run.__exit__(type(exc), exc, exc.__traceback__)
            raise
        _finish(run, artifacts, result)
        return result

    def run_async(wrapped: Callable[..., Any], instance: object, args: Any, kwargs: Any) -> Any:
        if not plan.enabled():
            return wrapped(*args, **kwargs)
        return _run_async(wrapped, instance, args, kwargs)

    return run_async if is_async else run_sync


@overload
def tracked_optimization(func: F, /) -> F: ...


@overload
def tracked_optimization(
    func: None = None,
    /,
    *,
    experiment: str | None = None,
    run_name: str | Callable[..., str] | None = None,
    params: type[Any] | Callable[..., Any] | None = None,
    metrics: type[Any] | Callable[[Any], Any] | None = None,
    artifacts: Iterable[str | Path] = (),
    tags: Mapping[str, object] | None = None,
    enabled: bool | Callable[[], bool] = True,
    nested: bool | None = None,
    tracking_uri: str | None = None,
    log_inputs: bool = True,
    log_model: Literal["lp", "mps"] | None = None,
) -> Callable[[F], F]: ...


def tracked_optimization(
    func: Callable[..., Any] | None = None,
    /,
    *,
    experiment: str | None = None,
    run_name: str | Callable[..., str] | None = None,
    params: type[Any] | Callable[..., Any] | None = None,
    metrics: type[Any] | Callable[[Any], Any] | None = None,
    artifacts: Iterable[str | Path] = (),
    tags: Mapping[str, object] | None = None,
    enabled: bool | Callable[[], bool] = True,
    nested: bool | None = None,
    tracking_uri: str | None = None,
    log_inputs: bool = True,
    log_model: Literal["lp", "mps"] | None = None,
) -> Any:
    """Track every call of a pipeline function as one MLflow run.

    Use it bare (``@tracked_optimization``), with options (``@tracked_optimization(...)``) or
    from outside (``tracked_optimization(...)(module.func)``). The function's arguments become
    params, its return value metrics (numbers), tags (strings) and per-step series (DataFrames);
    its return value and exceptions pass through untouched.

    Args:
        func: The function, when used bare.
        experiment: Experiment name (default: ``MLFLOW_EXPERIMENT_NAME``, else ``Default``).
        run_name: A template filled from the bound arguments plus ``{timestamp}``, ``{date}``
            and ``{func}`` (a parameter of one of those names is the argument), e.g.
            ``"comparison_{building_id}_{timestamp}"``, or a callable taking the arguments it
            names. Default: the function's name.
        params: A pydantic model validated from the arguments by name, or a callable taking the
            arguments it names and returning a model or mapping (for inputs derived from the
            arguments); the result is logged as params and whole as ``config.json``. Default:
            every argument that maps cleanly onto a param (DataFrames and other objects are
            only described in config.json).
        metrics: A pydantic model validated from the return value, or a callable turning the
            return value into something mappable. Default: the return value itself.
        artifacts: Files or folders to log after the call (a folder's contents go to the
            artifact root); templated like ``run_name``.
        tags: Tags set on every run.
        enabled: ``False`` returns the function unwrapped; a callable is asked at each call.
            ``EMSTRACK_DISABLED=1`` switches tracking off at call time.
        nested: ``None`` nests inside an open run; ``False`` never nests.
        tracking_uri: Store to write to; default ``MLFLOW_TRACKING_URI``, else
            ``sqlite:///mlflow.db`` in the working directory.
        log_inputs: Log the validated inputs as ``config.json``.
        log_model: Also log every PuLP model solved in the run as an ``.lp`` or ``.mps`` file.

    Raises:
        ConfigurationError: When the options cannot work with the function's signature (an
            unknown template field, a required params field that is not a parameter).

    """
    options = _Options(
        experiment=experiment,
        run_name=run_name,
        params=params,
        metrics=metrics,
        artifacts=tuple(str(path) for path in artifacts),
        tags=tags,
        enabled=enabled,
        nested=nested,
        tracking_uri=tracking_uri,
        log_inputs=log_inputs,
        log_model=log_model,
    )

    def decorate(function: F) -> F:
        if enabled is False:
            return function
        if not callable(function) and not isinstance(function, classmethod | staticmethod):
            raise ConfigurationError(f"tracked_optimization needs a function, not {function!r}")
        plan = _Plan(function, options)
        target = function.__func__ if isinstance(function, classmethod | staticmethod) else function
        is_async = inspect.iscoroutinefunction(target)
        given = {field.name: getattr(options, field.name) for field in dataclasses.fields(options)}
        return TrackedFunction(function, _make_wrapper(plan, is_async), tracked_optimization, given)  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate
