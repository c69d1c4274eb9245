"""Only one build step pyproject.toml cannot say: the skills live at the top of the project (``skills/``, where
an Agent Skills reader looks) and ship inside the package as ``ategnatos_mcp/skills/`` (where the server finds
them once installed). Everything else is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithSkills(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "skills"
        target = Path(self.build_lib) / "ategnatos_mcp" / "skills"
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithSkills})
