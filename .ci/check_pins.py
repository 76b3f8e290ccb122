"""Install the lowest and the highest dependency sets pyproject.toml admits, each into a throwaway venv, and run
the unit tests on both.

"Lowest" pins every direct requirement that has a floor (``>=X``) at that floor and lets pip resolve the rest.
"Highest" pins opentelemetry-sdk at the newest release the range admits that resolves with everything else, and
lets pip pick the newest of the rest (pip alone may settle on an older SDK: it takes the first consistent set it
finds). An SDK release in range that does not resolve is named (an upstream package lags behind it); a set that
cannot be installed at all is a failure. Usage: python .ci/check_pins.py [lowest|highest ...] [-- pytest args]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRA = "test"
# The unit tests of everything that meets the SDK: the private seams, the providers, the wire encoder, the log
# bridge, the settings (in memory: no services started). `-- -m "not integration"` runs every unit test instead
# (about four times as long).
SDK_FACING = ["tests/test_sdk_private_guard.py", "tests/test_sdk_private_log_queue.py", "tests/test_seam_*.py",
              "tests/test_asgi_middleware.py", "tests/test_histogram_points.py", "tests/test_otlp_wire.py",
              "tests/test_log_bridge_paths.py", "tests/test_providers.py", "tests/test_process_metrics.py",
              "tests/test_settings.py", "tests/test_standard_variables.py", "tests/test_internal_errors.py",
              "tests/test_packaging.py"]
DEFAULT_PYTEST = ["-m", "not integration", "-q", "-p", "no:randomly", "-x"]


def requirements(project: dict, extra: str | None, seen: set[str] | None = None) -> list[str]:
    """The direct requirements of the project and of ``extra`` (following self-references)."""
    seen = set() if seen is None else seen
    found = list(project["dependencies"]) if extra is None else []
    if extra is None or extra in seen:
        return found
    seen.add(extra)
    name = project["name"]
    for line in project["optional-dependencies"][extra]:
        own = re.match(rf"{re.escape(name)}\[([^\]]+)\]", line)
        if own:
            for inner in own.group(1).split(","):
                found += requirements(project, inner.strip(), seen)
        else:
            found.append(line)
    return found


def floors(lines: list[str]) -> dict[str, str]:
    """name -> the version its ``>=`` bound names (the highest floor when a name appears twice)."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    chosen: dict[str, str] = {}
    for line in lines:
        req = Requirement(line)
        for spec in req.specifier:
            if spec.operator == ">=":
                name = req.name.lower()
                if name not in chosen or Version(spec.version) > Version(chosen[name]):
                    chosen[name] = spec.version
    return chosen


def released(python: str, name: str) -> list[str]:
    """The versions of ``name`` on the index, newest first (pre-releases included)."""
    out = subprocess.run([python, "-m", "pip", "index", "versions", "--pre", name], check=True,
                         capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("Available versions:"))
    return [v.strip() for v in line.split(":", 1)[1].split(",")]


def newest_resolving_sdk(python: str, project: dict) -> str:
    """The newest opentelemetry-sdk release in range with which the test extra resolves."""
    from packaging.requirements import Requirement

    wanted = next(Requirement(x) for x in project["dependencies"] if x.startswith("opentelemetry-sdk"))
    for version in released(python, "opentelemetry-sdk"):
        if version not in wanted.specifier:
            continue
        tried = subprocess.run([python, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
                                f"{ROOT}[{EXTRA}]", f"opentelemetry-sdk=={version}"], capture_output=True, text=True)
        if tried.returncode == 0:
            return version
        print(f"== highest: opentelemetry-sdk {version} is in range but does not resolve with the rest "
              f"(an upstream package lags behind it)", flush=True)
    raise SystemExit("no opentelemetry-sdk release in range resolves")


_CONSTRAINT = re.compile(r"The user requested \(constraint\) ([A-Za-z0-9_.\-]+)==")


def reachable_floors(python: str, pins: dict[str, str], constraints: Path) -> dict[str, str]:
    """The floors that resolve together; a floor the rest of the test extra rules out is named and left to pip.

    Such a floor is not a combination pyproject admits (another requirement excludes it), but it says less than
    it seems: for an OpenTelemetry package that fails the check, for the others it is named only.
    """
    pins = dict(pins)
    for _ in range(len(pins)):
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
        tried = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-c",
                                str(constraints), f"{ROOT}[{EXTRA}]"], capture_output=True, text=True)
        if tried.returncode == 0:
            return pins
        excluded = {name.lower() for name in _CONSTRAINT.findall(tried.stdout + tried.stderr)} & set(pins)
        if not excluded:
            raise SystemExit(f"the lowest set does not resolve:\n{tried.stdout[-3000:]}{tried.stderr[-3000:]}")
        for name in sorted(excluded):
            print(f"== lowest: {name}=={pins.pop(name)} cannot be installed with the rest of the {EXTRA} extra "
                  "(another requirement rules it out): pip picks the lowest it can", flush=True)
            if name.startswith("opentelemetry-"):
                raise SystemExit(f"the floor of {name} is not installable beside the other OpenTelemetry pins")
    raise SystemExit("the lowest set does not resolve")


def install(kind: str, venv: Path) -> dict[str, str]:
    """Make the venv, install the project with its test extra; returns name -> installed version."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip", "packaging"], check=True)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    constraints = venv / "constraints.txt"
    if kind == "lowest":
        pins = reachable_floors(python, floors(requirements(project, None) + requirements(project, EXTRA)),
                                constraints)
    else:
        pins = {"opentelemetry-sdk": newest_resolving_sdk(python, project)}
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    subprocess.run([python, "-m", "pip", "install", "-q", "-c", str(constraints), "-e", f"{ROOT}[{EXTRA}]"],
                   check=True)
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], check=True, capture_output=True,
                            text=True).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(listed)}


def main(argv: list[str]) -> int:
    args, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    kinds = args or ["lowest", "highest"]
    failed = []
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix=f"otel-distro-{kind}-") as tmp:
            venv = Path(tmp) / "venv"
            print(f"== {kind}: installing", flush=True)
            try:
                versions = install(kind, venv)
            except subprocess.CalledProcessError as err:
                print(f"== {kind}: the set does not install ({err})", flush=True)
                failed.append(kind)
                continue
            otel = {n: v for n, v in versions.items() if n.startswith("opentelemetry-")}
            print(f"== {kind}: " + ", ".join(f"{n}=={v}" for n, v in sorted(otel.items())), flush=True)
            chosen = pytest_args or [*DEFAULT_PYTEST, *sorted(str(p.relative_to(ROOT)) for pattern in SDK_FACING
                                                            for p in ROOT.glob(pattern))]
            tests = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", *chosen], cwd=ROOT)
            if tests.returncode != 0:
                failed.append(kind)
            print(f"== {kind}: tests {'passed' if tests.returncode == 0 else 'FAILED'}", flush=True)
    if failed:
        print(f"check_pins: failed for {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
