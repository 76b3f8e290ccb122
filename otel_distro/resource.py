"""The resource: who is emitting (service, version, environment, host, process, container, pod).

Everything is read locally (no network probe). The SDK refreshes
``service.instance.id`` in every provider after a fork; the process id is
refreshed by :mod:`otel_distro._sdk_private.provider_resource`, so each prefork
worker is told apart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.resources import (
    OsResourceDetector,
    ProcessResourceDetector,
    Resource,
    ServiceInstanceIdResourceDetector,
)

from otel_distro.settings import Settings, hook_inherited
from otel_distro.version import __version__

_log = logging.getLogger("otel_distro")

_CONTAINER_ID = re.compile(r"([0-9a-f]{64})")
# Files the kernel exposes that name the container a process runs in (cgroup v1, then v2).
_CGROUP_FILES = ("/proc/self/cgroup", "/proc/self/mountinfo")


def container_id(paths: Iterable[str] = _CGROUP_FILES) -> str | None:
    """The 64-hex container id from cgroup files, or None outside a container."""
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if "/docker/" in line or "/kubepods" in line or "containerd" in line \
                            or "/containers/" in line or "cri-o" in line:
                        match = _CONTAINER_ID.search(line)
                        if match:
                            return match.group(1)
        except OSError:
            continue
    return None


def _host_attributes() -> dict[str, Any]:
    import platform
    import socket

    return {"host.name": socket.gethostname(), "host.arch": platform.machine()}


def _distro_attributes(settings: Settings) -> dict[str, Any]:
    from opentelemetry.sdk.version import __version__ as sdk_version

    attributes: dict[str, Any] = {
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": sdk_version,
        "telemetry.distro.name": "otel-distro",
        "telemetry.distro.version": __version__,
    }
    optional = {
        "service.version": settings.service_version,
        "deployment.environment.name": settings.environment,
        "k8s.pod.name": settings.k8s_pod_name,
        "k8s.pod.uid": settings.k8s_pod_uid,
        "k8s.namespace.name": settings.k8s_namespace_name,
        "k8s.node.name": settings.k8s_node_name,
        "container.id": container_id(),
    }
    attributes.update({k: v for k, v in optional.items() if v})
    return attributes


def service_name(settings: Settings) -> tuple[str, bool]:
    """The service name and whether it had to be guessed from the program name."""
    if settings.service_name:
        return settings.service_name, False
    from_attributes = dict(settings.resource_attributes).get("service.name")
    if from_attributes:
        return from_attributes, False
    return settings.program_name, True


def under_file(settings: Settings, from_file: Resource) -> Resource:
    """The resource ``OTEL_CONFIG_FILE`` describes, over the distro's own attributes: the file's win.

    The distro's are those :func:`build` adds over the detected ones (``telemetry.distro.*``, ``service.version``,
    ``deployment.environment.name``, the ``K8S_*`` downward-API attributes, ``container.id``) and
    ``service.instance.id``, which tells instances apart whether or not the process forks (the SDK sets a new one
    in a forked child); other detectors run only where the file lists them, as the specification says.
    """
    return (ServiceInstanceIdResourceDetector().detect()
            .merge(Resource(_distro_attributes(settings))).merge(from_file))


def build(settings: Settings) -> Resource:
    """Detected attributes, overridden by ours, overridden by the user's."""
    name, guessed = service_name(settings)
    if guessed and not hook_inherited():  # said once, by the process that ran the hook first
        _log.warning("otel-distro: OTEL_SERVICE_NAME is not set; using %r from the program name",
                     name)
    detected = (
        Resource(_host_attributes())
        .merge(OsResourceDetector().detect())
        .merge(ProcessResourceDetector().detect())
        .merge(ServiceInstanceIdResourceDetector().detect())
    )
    user = dict(settings.resource_attributes)
    user["service.name"] = name
    return detected.merge(Resource(_distro_attributes(settings))).merge(Resource(user))
