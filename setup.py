"""Ship ``configs/*.toml`` inside the package so that an installed wheel finds its default model spec.

``configs/`` stays the one place where the model and column mappings are declared and edited; the
build copies its TOML files to ``linkage/configs/`` in the wheel. An editable install reads them from
the checkout (``linkage.model.DEFAULT_SPEC`` looks in both places). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "linkage" / "configs"
        target.mkdir(parents=True, exist_ok=True)
        for toml in sorted((HERE / "configs").glob("*.toml")):
            shutil.copy2(toml, target / toml.name)


setup(cmdclass={"build_py": BuildWithConfigs})
