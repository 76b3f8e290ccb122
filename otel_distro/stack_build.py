"""Build the stack's own binaries from Go modules, cached by version: our Collector, Jaeger v2, VictoriaLogs.

The Collector is built with the OpenTelemetry Collector Builder (ocb) from ``collector/builder-config.yaml``;
Jaeger and VictoriaLogs are ``go build`` of their published modules in a throw-away module (``go get -tool``).
Everything lands in a cache folder (default ``~/.cache/otel-distro``), one sub-folder per program, keyed by
version (and, for the Collector, by the manifest's hash), so a second ``stack build`` only finds them.
Nothing but Go is needed; Prometheus and Alertmanager come from the system's packages (:mod:`otel_distro.stack`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from otel_distro import _assets
from otel_distro.settings import child_environment

__all__ = ["DEFAULT_CACHE", "JAEGER", "VICTORIA_LOGS", "Built", "GoMissing", "GoProgram", "build", "find_built"]

DEFAULT_CACHE = Path.home() / ".cache" / "otel-distro"
BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder"
# static binaries: no C toolchain needed, and they run on any Linux of the same architecture
_GO_ENV = {"CGO_ENABLED": "0"}
_LDFLAGS = "-s -w"


class GoMissing(RuntimeError):
    """Go is not installed: nothing can be built."""


@dataclass(frozen=True)
class GoProgram:
    """A program built from a published Go module at a pinned version."""

    name: str
    package: str
    version: str

    def folder(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.version}"

    def binary(self, cache: Path) -> Path:
        return self.folder(cache) / self.name


JAEGER = GoProgram("jaeger", "github.com/jaegertracing/jaeger/cmd/jaeger", "v1.76.0")
VICTORIA_LOGS = GoProgram("victoria-logs", "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs", "v1.52.1")


@dataclass(frozen=True)
class Built:
    """Paths of the built binaries."""

    collector: Path
    jaeger: Path
    victoria_logs: Path

    def as_dict(self) -> dict[str, str]:
        return {"collector": str(self.collector), "jaeger": str(self.jaeger),
                "victoria_logs": str(self.victoria_logs)}


@dataclass(frozen=True)
class CollectorManifest:
    """The ocb manifest: its content, the distribution's name and release, and the builder's version."""

    path: Path
    data: dict
    name: str
    release: str
    builder_version: str

    @classmethod
    def load(cls, path: Path | None = None) -> CollectorManifest:
        import yaml  # the `collector` extra

        path = path or _assets.collector_dir() / "builder-config.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        core = [entry["gomod"].split() for kind in ("receivers", "exporters") for entry in data.get(kind) or []
                if entry["gomod"].startswith("go.opentelemetry.io/collector/")]
        if not core:
            raise ValueError(f"{path}: no go.opentelemetry.io/collector module to take the builder's version from")
        return cls(path, data, data["dist"]["name"], str(data["dist"]["version"]), core[0][1])

    def folder(self, cache: Path) -> Path:
        """Keyed by release and by the manifest's content (its comments aside)."""
        digest = hashlib.sha256(json.dumps(self.data, sort_keys=True).encode()).hexdigest()[:12]
        return cache / f"{self.name}-{self.release}-{digest}"

    def binary(self, cache: Path) -> Path:
        return self.folder(cache) / self.name


def _go(missing: list[str]) -> str:
    go = shutil.which("go")
    if go is None:
        raise GoMissing(f"Go is not installed (https://go.dev/dl/, 1.26 or later) and {', '.join(missing)} "
                        "must be built: `otel-distro stack build` needs nothing else (Prometheus and "
                        "Alertmanager come from the system's packages)")
    return go


def go_available() -> bool:
    return shutil.which("go") is not None


def find_built(cache: Path = DEFAULT_CACHE) -> Built | None:
    """The cached binaries for the pinned versions, or None if any is missing."""
    found = Built(CollectorManifest.load().binary(cache), JAEGER.binary(cache), VICTORIA_LOGS.binary(cache))
    return found if all(os.access(p, os.X_OK) for p in (found.collector, found.jaeger, found.victoria_logs)) else None


def _run(argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              env=child_environment({**_GO_ENV, **(env or {})}))
    if done.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
        raise RuntimeError(f"`{' '.join(argv)}` failed (exit {done.returncode}); log {log}:\n{tail}")


def _builder(go: str, version: str, cache: Path) -> Path:
    tools = cache / f"builder-{version}"
    binary = tools / "builder"
    if not os.access(binary, os.X_OK):
        tools.mkdir(parents=True, exist_ok=True)
        _run([go, "install", f"{BUILDER_MODULE}@{version}"], tools, tools / "build.log", {"GOBIN": str(tools)})
    return binary


def _build_collector(go: str, manifest: CollectorManifest, cache: Path) -> None:
    import yaml  # the `collector` extra

    folder = manifest.folder(cache)
    builder = _builder(go, manifest.builder_version, cache)
    folder.mkdir(parents=True, exist_ok=True)
    data = {**manifest.data, "dist": {**manifest.data["dist"]}}
    data["dist"]["output_path"] = str(folder / "src")
    (folder / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    _run([str(builder), "--config", str(folder / "manifest.yaml"), f"--ldflags={_LDFLAGS}"], folder,
         folder / "build.log")
    os.replace(folder / "src" / manifest.name, manifest.binary(cache))


def _build_program(go: str, program: GoProgram, cache: Path) -> None:
    src = program.folder(cache) / "src"
    src.mkdir(parents=True, exist_ok=True)
    log = program.folder(cache) / "build.log"
    (src / "go.mod").write_text(f"module otel-distro.local/{program.name}\n", encoding="utf-8")
    _run([go, "get", "-tool", f"{program.package}@{program.version}"], src, log)
    _run([go, "build", "-trimpath", f"-ldflags={_LDFLAGS}", "-o", str(program.binary(cache)), program.package],
         src, log)


def build(cache: Path = DEFAULT_CACHE, progress: Callable[[str], None] = lambda _: None) -> Built:
    """Build what is not cached yet; return every binary's path. Raises GoMissing if Go is needed and absent."""
    manifest = CollectorManifest.load()
    steps: list[tuple[str, Path, Callable[[str], None]]] = [
        (f"Collector {manifest.name} {manifest.release} (ocb {manifest.builder_version})", manifest.binary(cache),
         lambda go: _build_collector(go, manifest, cache)),
        (f"Jaeger {JAEGER.version}", JAEGER.binary(cache), lambda go: _build_program(go, JAEGER, cache)),
        (f"VictoriaLogs {VICTORIA_LOGS.version}", VICTORIA_LOGS.binary(cache),
         lambda go: _build_program(go, VICTORIA_LOGS, cache)),
    ]
    missing = [what for what, binary, _ in steps if not os.access(binary, os.X_OK)]
    go = _go(missing) if missing else ""
    for what, binary, make in steps:
        if os.access(binary, os.X_OK):
            progress(f"{what}: cached {binary}")
            continue
        started = time.monotonic()
        progress(f"{what}: building (several minutes on a cold cache)...")
        make(go)
        size = binary.stat().st_size / 2**20
        progress(f"{what}: built {binary} in {time.monotonic() - started:.0f}s ({size:.0f} MiB)")
    built = find_built(cache)
    assert built is not None, "every binary was just built or found"
    return built
