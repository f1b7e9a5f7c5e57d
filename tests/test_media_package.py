"""The media package's boundary: its public names, and the libraries only it may import."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import wanflow
from wanflow import media

MEDIA_LIBRARIES = {"av", "PIL", "numpy"}
PACKAGE = Path(wanflow.__file__).resolve().parent   # the package under test, as installed


def test_public_api_is_reexported_from_the_defining_modules():
    for name in media.__all__:
        obj = getattr(media, name)
        assert obj.__module__.startswith("wanflow.media."), (name, obj.__module__)
    assert callable(media.probe) and callable(media.assemble), "functions, not submodules"


def test_only_the_media_package_imports_the_media_libraries():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "media" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            if any(n.split(".")[0] in MEDIA_LIBRARIES for n in names):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == []


def test_importing_wanflow_loads_no_media_library():
    code = ("import sys, wanflow, wanflow.cli; "
            f"print(sorted(m for m in {sorted(MEDIA_LIBRARIES)!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"
