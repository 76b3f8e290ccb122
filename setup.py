"""The build step pyproject.toml cannot express: the wheel carries the Collector configs and the demo's services.

``collector/`` and ``examples/`` stay at the top of the repository (the stack and the tests use them there); the
wheel gets copies under ``otel_distro/_shipped/``, where :mod:`otel_distro._assets` finds them once installed.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("collector", "examples")
# Never shipped: caches, local secrets, and the Express example's installed and compiled files.
LEFT_OUT = ("__pycache__", "*.pyc", ".pytest_cache", "secrets", "node_modules", "dist")


class BuildPyWithShippedFiles(build_py):
    def run(self) -> None:
        super().run()
        here = Path(__file__).resolve().parent
        for name in SHIPPED:
            target = Path(self.build_lib) / "otel_distro" / "_shipped" / name
            shutil.copytree(here / name, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*LEFT_OUT))


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
