"""How the package presents itself to opentelemetry-instrument and to users."""

from __future__ import annotations

from importlib.metadata import distribution, entry_points
from pathlib import Path

import otel_distro
from otel_distro.configurator import OtelConfigurator
from otel_distro.distro import OtelDistro


def test_entry_points_have_names_of_our_own() -> None:
    distros = {e.name: e for e in entry_points(group="opentelemetry_distro")}
    configurators = {e.name: e for e in entry_points(group="opentelemetry_configurator")}
    assert distros["otel_distro"].load() is OtelDistro
    assert configurators["otel_distro"].load() is OtelConfigurator


def test_package_is_typed_and_its_api_small() -> None:
    files = {str(f) for f in distribution("otel-distro").files or []}
    assert any(f.endswith("otel_distro/py.typed") for f in files) or \
        (Path(otel_distro.__file__).parent / "py.typed").exists()
    assert sorted(otel_distro.__all__) == ["Telemetry", "__version__", "configure", "shutdown"]


def test_cli_is_installed() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "otel-distro"]
    assert script.value == "otel_distro.cli:main"
