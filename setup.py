"""Build hook only (the project's metadata is in pyproject.toml): wheels carry the repository's ``data/``.

``data/`` (our humanoid, demo clips and configs) stays at the top of the repository, as the design fixes it;
``build_py`` copies it into the built package as ``mimictools/_bundled/data/``, so that an installed wheel has
it too. `mimictools.paths.bundled_data_dir` finds either (an editable install reads ``data/`` in place).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import setuptools
from setuptools import setup
from setuptools.command.build_py import build_py

DATA = Path(__file__).resolve().parent / "data"


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads data/ from the checkout
        dst = Path(self.build_lib) / "mimictools" / "_bundled" / "data"
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(DATA, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _license() -> dict:
    """Apache-2.0 as an SPDX ``License-Expression`` (PEP 639, setuptools >= 77, Python >= 3.9); the older
    free-text field where only an older setuptools installs (Python 3.8, Isaac Gym's). setuptools deprecated
    ``project.license`` as a TOML table (refused after 2027-02-18), hence no license key in pyproject.toml."""
    major = int(setuptools.__version__.split(".")[0])
    return {"license_expression": "Apache-2.0"} if major >= 77 else {"license": "Apache-2.0"}


setup(cmdclass={"build_py": BuildPyWithData}, **_license())
