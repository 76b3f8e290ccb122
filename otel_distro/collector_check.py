"""Static checks for an OpenTelemetry Collector (otelcol-contrib) configuration.

``check_config(path)`` reads a Collector YAML file and returns a list of
:class:`Problem`; an empty list means the file passed every check:

- every component referenced by a pipeline (or ``service.extensions``) is defined;
- every defined component type exists in the pinned otelcol-contrib manifest
  (``collector/otelcol-contrib-components.yaml``); a deprecated alias is a warning
  naming the new type;
- every connector is used as an exporter in one pipeline and as a receiver in another;
- ``memory_limiter`` is the first processor of every pipeline;
- nothing listens on all interfaces (``0.0.0.0``, ``::``, ``[::]`` or an empty host)
  except through an environment placeholder such as ``${env:OTEL_COLLECTOR_HOST}``;
- every pipeline has a receiver and an exporter; defined components that no pipeline
  uses are reported as warnings.

The Collector itself cannot run here, so this is the gate that keeps shipped configs
consistent with the pinned distribution.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_distro import _assets

__all__ = ["DEFAULT_COMPONENTS_FILE", "Problem", "check_config", "check_config_data", "load_components"]

DEFAULT_COMPONENTS_FILE = _assets.collector_dir() / "otelcol-contrib-components.yaml"

_CLASSES = ("receivers", "processors", "exporters", "connectors", "extensions")
_SIGNALS = ("traces", "metrics", "logs", "profiles")
# exporters that open a listening socket (their `endpoint` is a bind address)
_SERVER_EXPORTERS = {"prometheus"}
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
_ALL_INTERFACES = re.compile(r"^(0\.0\.0\.0|::|\[::\]|\*)?(:\d+)?$")


@dataclass(frozen=True)
class Problem:
    """One finding. ``message`` is a complete sentence naming file and location."""

    message: str
    severity: str = "error"  # "error" or "warning"
    location: str = ""

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass(frozen=True)
class _Components:
    version: str
    types: Mapping[str, frozenset[str]]  # class -> canonical types
    deprecated: Mapping[str, Mapping[str, str]]  # class -> alias -> canonical


def _yaml():
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("otel-distro collector check needs PyYAML: pip install pyyaml") from exc
    return yaml


def load_components(path: str | Path | None = None) -> _Components:
    """Read the pinned component list (type names per class, deprecated aliases)."""
    path = Path(path) if path is not None else DEFAULT_COMPONENTS_FILE
    data = _yaml().safe_load(path.read_text(encoding="utf-8"))
    types: dict[str, frozenset[str]] = {}
    deprecated: dict[str, dict[str, str]] = {}
    for cls in _CLASSES:
        entries = data.get(cls) or []
        types[cls] = frozenset(e["type"] for e in entries)
        deprecated[cls] = {alias: e["type"] for e in entries for alias in e.get("deprecated", [])}
    return _Components(version=str(data["version"]), types=types, deprecated=deprecated)


def check_config(path: str | Path, components_file: str | Path | None = None) -> list[Problem]:
    """Check the Collector config at ``path``; return the problems found (empty when clean)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [Problem(f"{path}: cannot read the file: {exc.strerror or exc}")]
    try:
        data = _yaml().safe_load(text)
    except Exception as exc:  # yaml.YAMLError and friends
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Problem(f"{path}: not valid YAML: {first}")]
    return check_config_data(data, source=str(path), components=load_components(components_file))


def _type_of(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _walk_strings(node: Any, where: str) -> Iterator[tuple[str, str, str]]:
    """Yield (location, key, value) for every string value under ``node``."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            loc = f"{where}.{k}"
            if isinstance(v, str):
                yield loc, str(k), v
            else:
                yield from _walk_strings(v, loc)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            loc = f"{where}[{i}]"
            if isinstance(v, str):
                yield loc, "", v
            else:
                yield from _walk_strings(v, loc)


def _binds_all_interfaces(key: str, value: str) -> bool:
    if _PLACEHOLDER.search(value):
        return False  # chosen at deploy time through the environment
    value = value.strip()
    if key in ("endpoint", "host", "listen_address", "address"):
        stripped = re.sub(r"^[a-z]+://", "", value).split("/", 1)[0]
        if stripped == "":
            return key == "host"  # endpoint: "" means the default; host: "" means all interfaces
        return bool(_ALL_INTERFACES.match(stripped))
    return value.startswith("0.0.0.0") or value.startswith("[::]:")


def check_config_data(data: Any, source: str = "<config>", components: _Components | None = None) -> list[Problem]:
    """Check an already-parsed Collector config (a mapping)."""
    comps = components or load_components()
    problems: list[Problem] = []

    def err(location: str, text: str, severity: str = "error") -> None:
        problems.append(Problem(f"{source}: {location}: {text}", severity, location))

    if not isinstance(data, Mapping):
        err("(top level)", "the file is not a YAML mapping of receivers/processors/exporters/service")
        return problems

    defined: dict[str, dict[str, Any]] = {}
    for cls in _CLASSES:
        section = data.get(cls)
        if section is None:
            defined[cls] = {}
            continue
        if not isinstance(section, Mapping):
            err(cls, f"must be a mapping of component ids, found {type(section).__name__}")
            defined[cls] = {}
            continue
        defined[cls] = dict(section)
        for cid in section:
            ctype = _type_of(str(cid))
            if ctype in comps.types[cls]:
                continue
            if ctype in comps.deprecated[cls]:
                err(f"{cls}.{cid}", f"'{ctype}' is a deprecated alias in otelcol-contrib {comps.version}; "
                    f"use '{comps.deprecated[cls][ctype]}'", "warning")
                continue
            other = [c for c in _CLASSES if c != cls and (ctype in comps.types[c] or ctype in comps.deprecated[c])]
            hint = f" (it is one of the {other[0]})" if other else ""
            err(f"{cls}.{cid}", f"unknown {cls[:-1]} type '{ctype}': not in the otelcol-contrib "
                f"{comps.version} manifest{hint}")

    service = data.get("service")
    if not isinstance(service, Mapping):
        err("service", "missing: the Collector needs service.pipelines")
        service = {}
    pipelines = service.get("pipelines") or {}
    if not isinstance(pipelines, Mapping) or not pipelines:
        err("service.pipelines", "no pipelines defined")
        pipelines = {}

    used: dict[str, set[str]] = {cls: set() for cls in _CLASSES}
    connector_as_exporter: dict[str, list[str]] = {}
    connector_as_receiver: dict[str, list[str]] = {}

    for pname, pipe in pipelines.items():
        ploc = f"service.pipelines.{pname}"
        if _type_of(str(pname)) not in _SIGNALS:
            err(ploc, f"pipeline name must start with one of {', '.join(_SIGNALS)}")
        if not isinstance(pipe, Mapping):
            err(ploc, "must be a mapping with receivers, processors and exporters")
            continue
        receivers = _as_list(pipe.get("receivers"))
        processors = _as_list(pipe.get("processors"))
        exporters = _as_list(pipe.get("exporters"))
        if not receivers:
            err(ploc, "has no receivers")
        if not exporters:
            err(ploc, "has no exporters")
        for role, ids, primary in (("receivers", receivers, "receivers"),
                                   ("exporters", exporters, "exporters")):
            for i, cid in enumerate(ids):
                cid = str(cid)
                if cid in defined["connectors"]:
                    used["connectors"].add(cid)
                    target = connector_as_receiver if role == "receivers" else connector_as_exporter
                    target.setdefault(cid, []).append(str(pname))
                elif cid in defined[primary]:
                    used[primary].add(cid)
                else:
                    err(f"{ploc}.{role}[{i}]", f"'{cid}' is not defined under {primary} (nor under connectors)")
        for i, cid in enumerate(processors):
            cid = str(cid)
            if cid in defined["processors"]:
                used["processors"].add(cid)
            else:
                err(f"{ploc}.processors[{i}]", f"'{cid}' is not defined under processors")
        if not processors or _type_of(str(processors[0])) != "memory_limiter":
            first = f"'{processors[0]}'" if processors else "nothing"
            err(f"{ploc}.processors", f"memory_limiter must be the first processor, found {first}")

    for i, ext in enumerate(_as_list(service.get("extensions"))):
        if str(ext) in defined["extensions"]:
            used["extensions"].add(str(ext))
        else:
            err(f"service.extensions[{i}]", f"'{ext}' is not defined under extensions")

    for cid in defined["connectors"]:
        as_exp = connector_as_exporter.get(cid)
        as_rcv = connector_as_receiver.get(cid)
        if as_exp and not as_rcv:
            err(f"connectors.{cid}", f"is an exporter in pipeline(s) {', '.join(as_exp)} but no pipeline "
                "receives from it; a connector must be used on both sides")
        elif as_rcv and not as_exp:
            err(f"connectors.{cid}", f"is a receiver in pipeline(s) {', '.join(as_rcv)} but no pipeline "
                "exports to it; a connector must be used on both sides")

    for cls in _CLASSES:
        for cid in defined[cls]:
            if str(cid) not in used[cls]:
                err(f"{cls}.{cid}", "is defined but not used by any pipeline"
                    if cls != "extensions" else "is defined but not listed in service.extensions", "warning")

    # listening sockets: receivers, extensions, server-like exporters, internal telemetry
    scopes: list[tuple[str, Any]] = []
    for cls in ("receivers", "extensions"):
        for cid, body in defined[cls].items():
            scopes.append((f"{cls}.{cid}", body))
    for cid, body in defined["exporters"].items():
        if _type_of(str(cid)) in _SERVER_EXPORTERS:
            scopes.append((f"exporters.{cid}", body))
    scopes.append(("service.telemetry", service.get("telemetry")))
    for where, body in scopes:
        for loc, key, value in _walk_strings(body, where):
            if _binds_all_interfaces(key, value):
                err(loc, f"binds all interfaces ('{value}'); use localhost/127.0.0.1 or an env placeholder "
                    "such as ${env:OTEL_COLLECTOR_HOST}")
    return problems
