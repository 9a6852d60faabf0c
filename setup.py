"""The wheel carries the checkout's example routes.yaml inside the package, where an
installed modelmux finds it (`modelmux.cli.launcher.bundled_config`): the design keeps the
file at the top of the checkout, beside `addons/router.py`, so it is copied at build
time rather than kept twice. Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = "routes.yaml"


class BuildWithRoutes(build_py):
    def run(self) -> None:
        if not self.editable_mode:
            # setuptools keeps build/lib between builds and only adds to it: a module moved
            # or removed since the last build would still be in the wheel.
            shutil.rmtree(Path(self.build_lib) / "modelmux", ignore_errors=True)
        super().run()
        if not self.editable_mode:  # an editable install reads the checkout's own file
            self.copy_file(BUNDLED, str(Path(self.build_lib) / "modelmux" / BUNDLED))


setup(cmdclass={"build_py": BuildWithRoutes})
