"""Typed configuration: dataclasses filled from YAML files and ``key=value`` overrides.

Each task defines a dataclass (usually extending :class:`RecurrentConfig`).
Values are checked against the field types: unknown keys and wrongly typed
values are errors that name the file and the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from seqkit.errors import SeqkitError


@dataclasses.dataclass
class RecurrentConfig:
    """Options every recurrent task shares: the stack, its regularisers and the optimiser."""

    seed: int = 42
    cell: Literal["simple", "gru", "lstm"] = "lstm"
    units: list[int] = dataclasses.field(default_factory=lambda: [128])
    bidirectional: bool = False
    merge_mode: Literal["concat", "sum", "mul", "ave"] = "concat"
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    inter_dropout: float = 0.0
    output_dropout: float = 0.0
    dropout_mask: Literal["step", "sequence"] = "sequence"
    regularizer: str | None = None
    regularizer_rate: float = 0.0
    implementation: Literal["auto", "fast", "keras"] = "auto"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    clipnorm: float | None = 1.0
    # Graph mode by default: seqkit's recurrent layers compile their own loops with XLA and,
    # with two or more threads, run one loop per thread over slices of the batch; a model
    # compiled whole by XLA runs those loops one after the other (docs/performance.md).
    jit_compile: bool = False
    early_stopping: int = 0
    # Opt-in "the best model in N minutes": stops at the end of the first epoch past N minutes of
    # training. Machine-dependent by nature (a faster machine trains more steps), so no default
    # config sets it: defaults budget in epochs and give the same model for the same seed anywhere.
    max_train_minutes: float | None = None
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"


def config_to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"list of {_type_name(inner)}"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp, field: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it (ints widen to floats)."""

    def bad() -> SeqkitError:
        return SeqkitError(
            f"{source}: field '{field}': expected {_type_name(tp)}, got {value!r} ({type(value).__name__})"
        )

    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad()
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, field, source)
            except SeqkitError:
                continue
        raise bad()
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise bad()
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and inner is not str:
            value = [value]  # allow `units=128` as a one-layer stack
        if not isinstance(value, (list, tuple)):
            raise bad()
        try:
            return [_coerce(v, inner, field, source) for v in value]
        except SeqkitError:
            raise bad() from None
    if origin is dict:
        if not isinstance(value, dict):
            raise bad()
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if isinstance(value, tp):
        return value
    raise bad()


def from_dict(cls, data: dict[str, Any], source: str = "config", base=None):
    """Build ``cls`` from ``data`` (on top of ``base`` or the defaults), checking every key."""
    if not isinstance(data, dict):
        raise SeqkitError(f"{source}: expected a mapping of config keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values = config_to_dict(base) if base is not None else {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), sorted(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SeqkitError(f"{source}: unknown config key '{key}'{hint}")
        values[key] = _coerce(value, hints[key], key, source)
    cfg = cls(**values)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate(source)
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value``; the value is read as YAML (``3``, ``0.1``, ``[64, 64]``, ``true``)."""
    if "=" not in text:
        raise SeqkitError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise SeqkitError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeqkitError(f"{path}: config file not found") from None
    except UnicodeDecodeError as e:
        raise SeqkitError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SeqkitError(f"{path}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SeqkitError(f"{path}: expected a mapping of config keys at the top level")
    return data


def resolve_config(cls, config_file=None, overrides: list[str] | None = None, extra: dict | None = None):
    """Defaults, then the YAML file, then ``--set`` overrides, then ``extra`` (e.g. ``--seed``)."""
    cfg = cls()
    if config_file is not None:
        data = load_yaml(config_file)
        data.pop("task", None)  # a run's config.json / a tuner's best.yaml names its task
        cfg = from_dict(cls, data, source=str(config_file), base=cfg)
    for item in overrides or []:
        key, value = parse_override(item)
        cfg = from_dict(cls, {key: value}, source=f"--set {item}", base=cfg)
    if extra:
        cfg = from_dict(cls, extra, source="command line", base=cfg)
    return cfg
