"""One loader for every configuration: shipped TOML files, ``--set KEY=VALUE`` overrides, typed fields.

Training recipes (``engine/config.py``), detection recipes (``detection/config.py``), campaigns
(``analysis/campaign.py``) and model-builder options (``resnetlab summary``) all go through here, so
one spelling works on every command: ``--set key=value``, the value read as TOML (``lr=0.05``,
``milestones=[100, 200]``, ``augment=false``, ``shortcut="B"``), a bare word as a string
(``stride_on=3x3``); ``table.key=value`` sets one entry of a table key (``model_options.shortcut=B``).
Every error names the file or flag and the key: a typo must never silently train the default.

Kept free of torch and numpy: ``resnetlab recipes`` and ``--help`` import it.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
import typing
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def shipped_names(folder: str) -> list[str]:
    """Names of the TOML files shipped in ``resnetlab/<folder>/`` (recipes, campaigns)."""
    where = resources.files("resnetlab")
    for part in folder.split("/"):
        where = where / part
    return sorted(p.name[:-5] for p in where.iterdir() if p.name.endswith(".toml"))


def read_toml(
    name_or_path: str | Path, folder: str, what: str, not_found: type[Exception] = ValueError
) -> tuple[dict, str, str]:
    """A shipped TOML file by name (``resnetlab/<folder>/<name>.toml``) or a ``.toml`` path:
    ``(values, source, stem)``, ``source`` naming it in error messages. An unknown name raises
    ``not_found`` listing the shipped names."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # name the file: the decoder's message does not
            raise ValueError(f"{what} {path} is not a UTF-8 text (TOML) file") from None
        source, stem = str(path), path.stem
    else:
        resource = resources.files("resnetlab")
        for part in (*folder.split("/"), f"{name_or_path}.toml"):
            resource = resource / part
        if not resource.is_file():
            raise not_found(
                f"unknown {what} {str(name_or_path)!r}; available {what}s: {', '.join(shipped_names(folder))}"
            )
        text, source, stem = resource.read_text(encoding="utf-8"), f"{what} {name_or_path}", str(name_or_path)
    try:
        return tomllib.loads(text), source, stem
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{source}: not valid TOML: {error}") from None


def parse_value(raw: str) -> object:
    """A ``--set`` value: TOML (numbers, booleans, quoted strings, lists, inline tables); anything
    TOML does not read (``3x3``, ``runs/r50``, an empty string) is taken as the string it is."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_override(
    item: str, keys: Iterable[str] | None = None, tables: Iterable[str] = (), flag: str = "--set"
) -> tuple[str, object]:
    """``KEY=VALUE`` -> ``(key, value)``. With ``keys``, a key must be one of them or
    ``TABLE.entry`` for a ``TABLE`` in ``tables``; the error lists the valid keys."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"{flag} {item!r}: expected KEY=VALUE")
    if keys is not None:
        keys = tuple(keys)
        table = key.split(".", 1)[0] if "." in key else None
        if key not in keys and table not in tuple(tables):
            raise ValueError(f"{flag} {key}: unknown key; valid keys: {', '.join(keys)}")
    return key, parse_value(raw)


def merge_overrides(
    values: dict,
    items: Iterable[str],
    keys: Iterable[str] | None = None,
    tables: Iterable[str] = (),
    flag: str = "--set",
) -> dict:
    """``values`` with every ``KEY=VALUE`` of ``items`` applied in order (a new dict)."""
    keys = None if keys is None else tuple(keys)
    tables = tuple(tables)
    merged = dict(values)
    for item in items:
        key, value = parse_override(item, keys, tables, flag)
        table, dot, entry = key.partition(".")
        if dot and table in tables:
            merged[table] = {**dict(merged.get(table) or {}), entry: value}
        else:
            merged[key] = value
    return merged


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def refuse_unknown(values: dict, valid: Iterable[str], where: str) -> None:
    """One error naming every key of ``values`` outside ``valid`` (listed in their order)."""
    valid = tuple(valid)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")


def build_config(cls: type[T], values: dict, source: str) -> T:
    """``cls(**values)`` for a config dataclass: unknown keys are refused by name, and a
    ``ValueError`` of its validation is prefixed with ``source`` (the file, or ``--set``)."""
    refuse_unknown(values, field_names(cls), source)
    try:
        return cls(**values)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def check_field_types(instance: Any) -> None:
    """Check (and normalise, on a frozen dataclass too) every field against its annotation:
    ``bool`` is true/false only (not 0/1), ``int`` refuses bools and floats, ``float`` takes an
    int and stores a float, ``tuple[...]`` takes a TOML list (its items checked alike), ``str`` a
    string. The message names the field."""
    hints = _type_hints(type(instance))
    for f in dataclasses.fields(instance):
        value = _typed(f.name, getattr(instance, f.name), hints[f.name])
        object.__setattr__(instance, f.name, value)


@functools.cache
def _type_hints(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls)  # resolves the string annotations of ``from __future__``


def _typed(name: str, value: object, hint: object, convert: bool = True) -> object:
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (tuple, list)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        args = typing.get_args(hint)
        for item in value:  # checked, kept as written: [16, 32] stays integers in config.json
            _typed(name, item, args[0] if args else Any, convert=False)
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value) if convert else value
    elif hint is str and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value
