"""``run.config``: the hyperparameters of a run.

Accepts a dict, an ``argparse.Namespace``, absl flags, or the path of a YAML/JSON file, and
gives attribute and item access. Changing a key that already has a different value raises
:class:`~trackd.errors.ConfigError` unless ``allow_val_change=True`` is passed, so a typo in a
sweep cannot silently overwrite a hyperparameter. Every change is sent to the run log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ._values import check_key, plain
from .errors import ConfigError

DEFAULTS_FILE = "config-defaults.yaml"


def config_source_to_dict(source: Any) -> dict[str, Any]:
    """A dict from any source ``init(config=...)`` and ``config.update()`` accept."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, (str, os.PathLike)):
        return load_config_file(os.fspath(source))
    if type(source).__module__.startswith("absl"):
        return dict(source.flag_values_dict())
    if hasattr(source, "__dict__") and type(source).__name__ == "Namespace":
        return dict(vars(source))
    raise ConfigError(
        f"config: cannot read a {type(source).__name__}; pass a dict, an argparse.Namespace, "
        "absl flags, or the path of a YAML or JSON file"
    )


def load_config_file(path: str) -> dict[str, Any]:
    """A YAML or JSON config file; ``{key: {value: v, desc: ...}}`` entries unwrap to ``v``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path!r}: {exc.strerror}") from exc
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config: {path!r} is not valid JSON: {exc}") from exc
    else:
        data = _load_yaml(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path!r} holds a {type(data).__name__}, not a mapping")
    out = {}
    for key, value in data.items():
        if key in ("trackd_version", "_trackd"):
            continue
        if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        out[str(key)] = value
    return out


def _load_yaml(text: str, path: str) -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise ConfigError(
            f"config: {path!r} is YAML, and reading YAML needs PyYAML; "
            "pip install 'trackd[yaml]' or use a JSON file"
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path!r} is not valid YAML: {exc}") from exc


class Config:
    """Attribute- and item-access mapping of a run's hyperparameters.

    Example::

        run.config.update({"lr": 3e-4, "batch": 64})
        run.config.epochs = 10
        print(run.config["lr"], run.config.batch)
    """

    def __init__(self, on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        object.__setattr__(self, "_items", {})
        object.__setattr__(self, "_on_change", on_change)

    def _set_callback(self, on_change: Callable[[dict[str, Any]], None] | None) -> None:
        object.__setattr__(self, "_on_change", on_change)

    def update(self, d: Any, allow_val_change: bool | None = None) -> None:
        """Add or change keys from a dict (or any source ``init`` accepts)."""
        data = config_source_to_dict(d)
        changed: dict[str, Any] = {}
        for key, value in data.items():
            key = str(key)
            try:
                check_key("config", key)
                value = plain(value, f"config[{key!r}]")
            except ValueError as exc:
                raise ConfigError(f"config: {exc}") from None
            if key in self._items and self._items[key] != value and not allow_val_change:
                raise ConfigError(
                    f"config: key {key!r} already has value {self._items[key]!r}; refusing to "
                    f"change it to {value!r}. Pass allow_val_change=True to "
                    "config.update() if the change is intended"
                )
            if key not in self._items or self._items[key] != value:
                changed[key] = value
        self._items.update(changed)
        if changed and self._on_change is not None:
            self._on_change(changed)

    def setdefaults(self, d: Mapping[str, Any]) -> None:
        """Set only the keys not set yet."""
        self.update({k: v for k, v in d.items() if k not in self._items})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def keys(self) -> Any:
        return self._items.keys()

    def items(self) -> Any:
        return self._items.items()

    def values(self) -> Any:
        return self._items.values()

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Config({self._items!r})"
