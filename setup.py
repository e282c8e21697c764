"""Only what pyproject.toml cannot say: the top-level resources/ folder ships as the
package dlstudio.resources (see [tool.setuptools.package-dir]), and automatic package
discovery cannot find a package that lives outside its parent's folder."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["dlstudio", "dlstudio.*"]), "dlstudio.resources", "dlstudio.resources.templates"])
