"""Map the top-level folders onto subpackages of ``sleuth`` (metadata lives in pyproject.toml)."""

from setuptools import find_packages, setup

SUBPACKAGES = ("agent", "tools", "prompts", "servers")

packages = ["sleuth", *find_packages(include=["sleuth.*"])]
package_dir = {"sleuth": "sleuth"}
for folder in SUBPACKAGES:
    package_dir[f"sleuth.{folder}"] = folder
    packages += [f"sleuth.{name}" for name in find_packages(include=[folder, f"{folder}.*"])]

setup(packages=packages, package_dir=package_dir)
