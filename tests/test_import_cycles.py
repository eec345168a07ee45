"""scripts/import_cycles.py, and the package layout it guards: no import cycle, no two modules of one name."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "dfnet"
spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import_cycles.py")
import_cycles = importlib.util.module_from_spec(spec)
sys.modules["import_cycles"] = import_cycles
spec.loader.exec_module(import_cycles)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_finds_cycles_through_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    write(pkg / "__init__.py", "")
    write(pkg / "a.py", "def f():\n    from pkg.b import g\n")  # inside a function: still a cycle
    write(pkg / "b.py", "from . import c\n")
    write(pkg / "c.py", "import pkg.a\n")
    write(pkg / "d.py", "from pkg.a import f\n")  # depends on the cycle, not part of it
    assert import_cycles.cycles(pkg) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert import_cycles.main([str(pkg)]) == 1
    write(pkg / "c.py", "")
    assert import_cycles.cycles(pkg) == [] and import_cycles.main([str(pkg)]) == 0


def test_the_package_has_no_import_cycle() -> None:
    assert import_cycles.cycles(PACKAGE) == []


def test_no_two_modules_share_a_file_name() -> None:
    """Command-line modules included: ``dfnet export`` is cli/export.py, the ONNX export onnx_export.py."""
    modules = [p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    names = Counter(p.name for p in modules)
    assert [name for name, count in names.items() if count > 1] == []
