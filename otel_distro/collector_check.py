"""Checks for an OpenTelemetry Collector configuration, or for Helm values of the opentelemetry-collector chart.

``check_file(path)`` returns a list of :class:`Problem`; an empty list means the file passed every check.

With our Collector built (``otel-distro stack build``) the binary is the judge: ``otelcol validate`` builds
every component from the config (unknown types and keys, wrong value types, bad regular expressions ...)
and ``otelcol components`` gives the list of component types. On top of that, and without a binary too:

- every component referenced by a pipeline (or ``service.extensions``) is defined;
- every defined component type is one the built Collector has (only with a binary);
- every connector is used as an exporter in one pipeline and as a receiver in another;
- ``memory_limiter`` is the first processor of every pipeline;
- nothing listens on all interfaces (``0.0.0.0``, ``::``, ``[::]`` or an empty host)
  except through an environment placeholder such as ``${env:OTEL_COLLECTOR_HOST}``;
- every pipeline has a receiver and an exporter; defined components that no pipeline
  uses are reported as warnings.

A Helm values file (it has a top-level ``config:`` and ``mode:``) is merged over the chart's default values
(Helm's rules: maps merge, a ``null`` deletes, lists replace) and checked against the chart's
``values.schema.json`` when a chart folder is given; its merged ``config`` then gets every check above, and the
chart-level ones: a ``load_balancing`` k8s resolver must name a service the chart creates (it creates no
``-headless`` one) and the ClusterRole must let it read EndpointSlices.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["Problem", "check_config", "check_config_data", "check_file", "collector_components",
           "helm_merge", "validate_with_binary"]

_CLASSES = ("receivers", "processors", "exporters", "connectors", "extensions")
_SIGNALS = ("traces", "metrics", "logs", "profiles")
# exporters that open a listening socket (their `endpoint` is a bind address)
_SERVER_EXPORTERS = {"prometheus"}
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
_ALL_INTERFACES = re.compile(r"^(0\.0\.0\.0|::|\[::\]|\*)?(:\d+)?$")
_VALIDATE_TIMEOUT = 60


@dataclass(frozen=True)
class Problem:
    """One finding. ``message`` is a complete sentence naming file and location."""

    message: str
    severity: str = "error"  # "error" or "warning"
    location: str = ""

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass(frozen=True)
class Components:
    """The component types a built Collector has, per class."""

    version: str
    types: Mapping[str, frozenset[str]]


def _yaml():
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("otel-distro collector check needs PyYAML: pip install pyyaml") from exc
    return yaml


@lru_cache(maxsize=8)
def collector_components(binary: Path) -> Components:
    """What ``binary components`` lists: its version and the type names of each component class."""
    done = subprocess.run([str(binary), "components"], capture_output=True, text=True, timeout=_VALIDATE_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"`{binary} components` failed: {done.stderr.strip()}")
    data = _yaml().safe_load(done.stdout)
    return Components(version=str(data["buildinfo"]["version"]),
                      types={cls: frozenset(str(c["name"]) for c in data.get(cls) or []) for cls in _CLASSES})


def validate_with_binary(binary: Path, config: Path, source: str,
                         env: Mapping[str, str] | None = None) -> list[Problem]:
    """``binary validate --config config`` in a clean environment plus ``env``: one error carrying the
    Collector's own message, or nothing."""
    done = subprocess.run([str(binary), "validate", "--config", f"file:{config}"], capture_output=True,
                          text=True, timeout=_VALIDATE_TIMEOUT, env={"PATH": os.defpath, **(env or {})})
    if done.returncode == 0:
        return []
    text = done.stderr or done.stdout
    start = text.find("Error: ")
    detail = text[start + len("Error: "):] if start >= 0 else text
    message = " ".join(line.strip() for line in detail.splitlines() if line.strip()) or f"exit {done.returncode}"
    return [Problem(f"{source}: otelcol validate ({binary.name}): {message}", "error", "otelcol validate")]


def _built_collector(cache: Path | None) -> Path | None:
    from otel_distro import stack_build

    built = stack_build.find_built(cache or stack_build.DEFAULT_CACHE)
    return built.collector if built is not None else None


def _read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(f"{path}: cannot read the file: {exc.strerror or exc}")]
    try:
        return _yaml().safe_load(text), []
    except Exception as exc:  # yaml.YAMLError and friends
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, [Problem(f"{path}: not valid YAML: {first}")]


def check_config(path: str | Path, binary: Path | None = None) -> list[Problem]:
    """Check the Collector config at ``path`` (with ``binary`` if given); return the problems found."""
    path = Path(path)
    data, problems = _read_yaml(path)
    if problems:
        return problems
    return _check_collector_config(data, str(path), binary)


def _check_collector_config(data: Any, source: str, binary: Path | None,
                            env: Mapping[str, str] | None = None) -> list[Problem]:
    components = collector_components(binary) if binary is not None else None
    problems = check_config_data(data, source=source, components=components)
    if binary is not None and not any(p.severity == "error" for p in problems):
        with tempfile.TemporaryDirectory(prefix="otel-distro-check-") as tmp:
            config = Path(tmp) / "config.yaml"
            config.write_text(_yaml().safe_dump(data, sort_keys=False), encoding="utf-8")
            problems += validate_with_binary(binary, config, source, env)
    return problems


def check_file(path: str | Path, *, cache: Path | None = None, binary: Path | None = None,
               chart: Path | None = None) -> list[Problem]:
    """Check a Collector config or a chart values file, with the built Collector when there is one.

    ``binary`` defaults to the Collector ``otel-distro stack build`` put in ``cache``; ``chart`` is a folder
    holding the chart's ``values.yaml`` and ``values.schema.json`` (for values files).
    """
    path = Path(path)
    data, problems = _read_yaml(path)
    if problems:
        return problems
    binary = binary or _built_collector(cache)
    if binary is None:
        problems.append(Problem(f"{path}: no built Collector (run `otel-distro stack build`): component types "
                                "and settings are not checked by `otelcol validate`", "warning"))
    if is_helm_values(data):
        return problems + check_helm_values(data, str(path), binary, chart)
    return problems + _check_collector_config(data, str(path), binary)


# --------------------------------------------------------------------------- Helm values

def is_helm_values(data: Any) -> bool:
    return isinstance(data, Mapping) and "config" in data and "mode" in data


def helm_merge(defaults: Any, values: Any) -> Any:
    """Helm's merge of user values over chart defaults: maps merge, ``null`` deletes a key, the rest replaces."""
    if not (isinstance(defaults, Mapping) and isinstance(values, Mapping)):
        return copy.deepcopy(values)
    merged = copy.deepcopy(dict(defaults))
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = _drop_nulls(copy.deepcopy(value))
    return merged


def _drop_nulls(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _drop_nulls(v) for k, v in node.items() if v is not None}
    return node


def _schema_problems(merged: Mapping[str, Any], schema_path: Path, source: str) -> list[Problem]:
    try:
        import jsonschema
    except ImportError:
        return [Problem(f"{source}: the chart schema is not checked: jsonschema is not installed "
                        "(pip install 'otel-distro[collector]')", "warning")]
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [Problem(f"{source}: {'.'.join(map(str, error.absolute_path)) or '(top level)'}: {error.message} "
                    f"(chart schema)", "error", "schema")
            for error in sorted(validator.iter_errors(merged), key=lambda e: list(map(str, e.absolute_path)))]


def _grants(rules: Any, group: str, resource: str, verbs: set[str]) -> bool:
    for rule in rules or []:
        if group in (rule.get("apiGroups") or []) and resource in (rule.get("resources") or []) \
                and verbs <= set(rule.get("verbs") or []):
            return True
    return False


def _chart_problems(values: Mapping[str, Any], source: str) -> list[Problem]:
    """What the chart renders wrongly although the Collector config itself is valid."""
    problems = []
    exporters = (values.get("config") or {}).get("exporters") or {}
    for cid, body in exporters.items():
        if str(cid).split("/")[0] != "load_balancing":
            continue
        k8s = ((body or {}).get("resolver") or {}).get("k8s")
        if not k8s:
            continue
        service = str(k8s.get("service", ""))
        if service.split(".")[0].endswith("-headless"):
            problems.append(Problem(
                f"{source}: config.exporters.{cid}.resolver.k8s.service: '{service}': the opentelemetry-collector "
                "chart creates no '-headless' service; name the gateway release's service "
                "('<release>-opentelemetry-collector.<namespace>'), whose EndpointSlices list every pod",
                "error", f"config.exporters.{cid}"))
        role = values.get("clusterRole") or {}
        if not (role.get("create") and _grants(role.get("rules"), "discovery.k8s.io", "endpointslices",
                                               {"get", "list", "watch"})):
            problems.append(Problem(
                f"{source}: clusterRole: the load_balancing k8s resolver ({cid}) watches EndpointSlices: create "
                "the ClusterRole with apiGroups [discovery.k8s.io], resources [endpointslices], verbs "
                "[get, list, watch] (without it the exporter fails to start)", "error", "clusterRole"))
    return problems


def _pod_environment(values: Mapping[str, Any]) -> dict[str, str]:
    """The variables the chart gives the container: MY_POD_IP and every ``extraEnvs`` entry (one that the pod
    fills in, ``valueFrom``, gets a stand-in value)."""
    env = {"MY_POD_IP": "127.0.0.1"}
    for entry in values.get("extraEnvs") or []:
        env[str(entry["name"])] = str(entry.get("value", f"stand-in-for-{entry['name']}"))
    return env


def check_helm_values(values: Mapping[str, Any], source: str, binary: Path | None,
                      chart: Path | None) -> list[Problem]:
    """Chart-level checks, the chart schema (with ``chart``), then the merged ``config`` as a Collector config."""
    problems = _chart_problems(values, source)
    if chart is not None:
        defaults = _yaml().safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
        merged = helm_merge(defaults, values)
        problems += _schema_problems(merged, chart / "values.schema.json", source)
    else:
        merged = {**values, "config": _drop_nulls(values.get("config") or {})}
        problems.append(Problem(f"{source}: no chart folder given (--chart): checked without the chart's "
                                "defaults and schema", "warning"))
    return problems + _check_collector_config(merged.get("config") or {}, f"{source} (config)", binary,
                                              _pod_environment(merged))


# --------------------------------------------------------------------------- static checks of a config

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


def check_config_data(data: Any, source: str = "<config>", components: Components | None = None) -> list[Problem]:
    """Check an already-parsed Collector config (a mapping); component types only with ``components``."""
    comps = components
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
            if comps is None or ctype in comps.types[cls]:
                continue
            other = [c for c in _CLASSES if c != cls and ctype in comps.types[c]]
            hint = f" (it is one of the {other[0]})" if other else ""
            err(f"{cls}.{cid}", f"unknown {cls[:-1]} type '{ctype}': not in the built Collector "
                f"{comps.version}{hint}")

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
