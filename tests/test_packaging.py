"""How the package presents itself to opentelemetry-instrument and to users."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution, entry_points
from pathlib import Path

import otel_distro
from otel_distro.configurator import OtelConfigurator
from otel_distro.distro import OtelDistro
from tests.conftest import ROOT, telemetry_env


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


_LAZY_START = """
import json, sys
import otel_distro
otel_distro.configure(service_name="lazy")
at_start = sorted(m for m in ("otel_distro.ai.pricing", "otel_distro.ai.meters", "otel_distro.business",
                              "genai_prices", "tomllib") if m in sys.modules)
from otel_distro import ai, business
cost = ai.record_call("openai", "gpt-4o", input_tokens=1000, output_tokens=100)
business.counter("lazy.kpi").add(1)
print(json.dumps({"at_start": at_start, "cost": cost, "limit": business._registry.max_values}))
"""


def test_start_up_leaves_genai_pricing_and_business_metrics_to_their_first_use(receiver) -> None:
    env = telemetry_env(receiver.endpoint, OTEL_METRIC_EXPORT_INTERVAL="60000",
                        OTEL_DISTRO_METRIC_ATTRIBUTE_VALUES="7")
    done = subprocess.run([sys.executable, "-c", _LAZY_START], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["at_start"] == []
    assert report["cost"] > 0  # priced from genai-prices' data, loaded by this first call
    assert report["limit"] == 7  # the configured bound, though imported after configure()
    assert receiver.metric("gen_ai.client.cost")
    # The exit flush exports the metrics once: the meter provider's shutdown collects, no flush before it.
    (kpi,) = receiver.metric("lazy.kpi")
    assert kpi.points[0].value == 1


def test_importing_the_package_or_the_collector_checker_loads_no_opentelemetry_module() -> None:
    code = ("import sys, otel_distro, otel_distro.collector_check, otel_distro.cli; "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry'))); "
            "otel_distro.configure; print('opentelemetry.sdk.trace' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]  # configure() loads the SDK when first reached


def test_in_a_checkout_the_tools_use_its_collector_and_examples_folders() -> None:
    from otel_distro import _assets

    assert not _assets.SHIPPED.exists()  # only a built wheel has the copies
    assert _assets.collector_dir() == ROOT / "collector" and (_assets.collector_dir() / "otelcol-config.yaml").is_file()
    assert (_assets.examples_root() / "examples" / "fastapi_app" / "main.py").is_file()


def _extras() -> dict[str, list[str]]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_every_extra_the_registry_names_installs_its_instrumentations() -> None:
    from otel_distro.integrations import registry

    declared = _extras()
    for extra, instrumentations in registry.extras().items():
        assert extra in declared, f"the registry names extra {extra!r}, pyproject.toml has none"
        names = {requirement.split(">")[0].split("=")[0].split("<")[0].strip() for requirement in declared[extra]}
        assert set(instrumentations) <= names, (extra, set(instrumentations) - names)


def test_the_all_extra_holds_every_family() -> None:
    from otel_distro.integrations import registry

    (requirement,) = _extras()["all"]
    assert requirement.startswith("otel-distro[")
    included = set(requirement[len("otel-distro["):-1].split(","))
    assert included == set(registry.extras())


def test_each_integration_is_named_once() -> None:
    from otel_distro.integrations import registry

    assert len(registry.BY_NAME) == len(registry.INTEGRATIONS)
