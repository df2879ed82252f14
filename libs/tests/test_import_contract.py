"""The import contracts of pyproject.toml hold, and they do break on a core/ that imports Faust.

`lint-imports` (import-linter) runs in a subprocess: on the repository's own configuration, and
on throwaway packages laid out like a service, with the same kind of contract.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

CONFIG = """
[tool.importlinter]
root_packages = ["svc_tmp"]
include_external_packages = true

[[tool.importlinter.contracts]]
name = "svc_tmp.core imports no stream library"
type = "forbidden"
source_modules = ["{source}"]
forbidden_modules = ["faust", "aiokafka", "prometheus_client", "svc_tmp.adapters"]
"""


def lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def service(tmp_path: Path, core_imports: str, source: str = "svc_tmp.core") -> Path:
    """A package like a service: core/rules.py with the given imports, adapters/streams.py."""
    package = tmp_path / "svc_tmp"
    (package / "core").mkdir(parents=True)
    (package / "adapters").mkdir()
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "adapters" / "__init__.py").write_text("")
    (package / "adapters" / "streams.py").write_text("import faust\nfrom svc_tmp.core import rules\n")
    (package / "core" / "rules.py").write_text(textwrap.dedent(core_imports) + "\nLIMIT = 3\n")
    (tmp_path / "pyproject.toml").write_text(CONFIG.format(source=source))
    return tmp_path


def test_the_repository_keeps_its_contracts() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_a_clean_core_keeps_the_contract(tmp_path: Path) -> None:
    result = lint_imports(service(tmp_path, "import math\n"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source", ["svc_tmp.core", "svc_tmp.core.**"])
@pytest.mark.parametrize("bad_import", ["import faust", "from prometheus_client import Counter",
                                        "from svc_tmp.adapters import streams"])
def test_a_core_importing_an_adapter_library_breaks_the_contract(tmp_path: Path, source: str,
                                                                  bad_import: str) -> None:
    result = lint_imports(service(tmp_path, bad_import + "\n", source))
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert "svc_tmp.core.rules" in result.stdout
