"""The dependency rule: every import points down the layers, or is a documented exception.

Layers, bottom to top (a module may import its own layer and those below it):

====  =======================  ==================================================
 0    ``sleuth.tools``         forensic tools, image loading, the plugin SDK
 1    ``sleuth.prompts``       prompt templates (data)
 2    ``sleuth.agent``         the graph, backends, fusion, the session and cases
 3    ``sleuth.settings``      settings resolved from arguments, environment, file
 4    ``sleuth.servers``       the MCP server, vLLM serving, LangGraph Studio
 5    front door               ``sleuth`` itself, ``sleuth.api``, ``sleuth.cli``,
                               ``sleuth.present``, ``sleuth.evaluation``
====  =======================  ==================================================

Imports inside functions count too. ``__main__`` modules are entry points: they may
import anything, and nothing may import them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"tools": "sleuth.tools", "prompts": "sleuth.prompts", "agent": "sleuth.agent"}
FOLDERS |= {"servers": "sleuth.servers", "sleuth": "sleuth"}
LAYERS = (
    ("sleuth.tools", 0),
    ("sleuth.prompts", 1),
    ("sleuth.agent", 2),
    ("sleuth.settings", 3),
    ("sleuth.servers", 4),
    ("sleuth", 5),
)
EXCEPTIONS = {
    # The MCP server serves what the presentation package draws: the annotated image
    # returned by analyze_image and the HTML report resource (sleuth.servers.mcp.resources).
    ("sleuth.servers.mcp.case_tools", "sleuth.present.annotate"),
    ("sleuth.servers.mcp.resources", "sleuth.present.report"),
}
"""(importer, imported) pairs allowed to point up, each with its reason above."""


MODULES: dict[str, Path] = {}


def layer(module: str) -> int:
    """Return the layer of a sleuth module (the most specific prefix wins)."""
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise ValueError(module)


def modules() -> dict[str, Path]:
    """Return every module of the package, by import name."""
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES.update(modules())


def imports(path: Path, module: str) -> set[str]:
    """Return the sleuth modules ``path`` imports (relative imports resolved)."""
    known = MODULES or modules()
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:  # `from a import b`: the module a.b, else a itself
                sub = f"{base}.{alias.name}"
                names.add(sub if sub in known else base)
    return {n for n in names if n in known}


def test_the_layout_is_found():
    assert "sleuth.agent.session" in MODULES and "sleuth.servers.mcp.server" in MODULES
    assert "sleuth.tools.registry" in MODULES and "sleuth.cli" in MODULES


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    if module.endswith(".__main__"):
        return  # an entry point
    upward = {
        name
        for name in imports(MODULES[module], module)
        if layer(name) > layer(module) and (module, name) not in EXCEPTIONS
    }
    assert not upward, f"{module} (layer {layer(module)}) imports from above: {sorted(upward)}"


def test_no_module_imports_a_main():
    importers = {
        module: sorted(n for n in imports(path, module) if n.endswith("__main__"))
        for module, path in MODULES.items()
    }
    assert {m: names for m, names in importers.items() if names} == {}


def test_every_exception_is_still_needed():
    for importer, imported in EXCEPTIONS:
        assert imported in imports(MODULES[importer], importer), (importer, imported)


def test_the_rule_catches_an_upward_import(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from sleuth.settings import Settings\n")
    found = imports(fake, "sleuth.agent.fake")
    assert "sleuth.settings" in found and layer("sleuth.settings") > layer("sleuth.agent.fake")


@pytest.mark.parametrize("folder", ["tools", "agent", "prompts", "servers"])
def test_a_folder_cannot_be_imported_under_its_own_name(folder):
    run = subprocess.run(
        [sys.executable, "-c", f"import {folder}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert f"import sleuth.{folder}, not {folder}" in run.stderr


def test_a_scan_worker_screens_without_importing_langgraph():
    """Screening never builds the graph: LangGraph and LangChain (~0.4 s) stay out of it."""
    probe = (
        "import sys, sleuth.scan.worker\n"
        "heavy = ('langgraph', 'langchain_core')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert run.stdout.strip() == "[]"
