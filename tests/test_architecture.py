"""The import rules of docs/architecture.md, read from its tables and checked on every module of the package.

The docs and this test say the same thing: change the table and the rule changes. Function-level and
TYPE_CHECKING imports count (a lazy import is still a dependency). A planted upward import shows that the
check can fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mimictools"
DOC = REPO / "docs" / "architecture.md"


def _cells(line: str) -> List[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table_after(text: str, header: str) -> List[List[str]]:
    """Rows of the first markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and _cells(line)[0] == header:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    raise AssertionError(f"{DOC}: no table with a '{header}' column")


def _ticked(cell: str) -> List[str]:
    return re.findall(r"`([^`]+)`", cell)


class Rules:
    """Layers (ordered), their modules, what each may import, and modules private to one importer."""

    def __init__(self, text: str) -> None:
        self.layer_of_prefix: Dict[str, str] = {}
        self.allowed: Dict[str, Set[str]] = {}
        self.allowed_modules: Dict[str, Set[str]] = {}
        for layer, modules, may in _table_after(text, "layer"):
            for m in _ticked(modules):
                self.layer_of_prefix[m] = layer
            plain = re.sub(r"`[^`]+`", "", may)
            self.allowed[layer] = {w.strip() for w in plain.split(",") if w.strip()}
            self.allowed_modules[layer] = set(_ticked(may))
        self.only_from: Dict[str, str] = {}
        for module, importer in _table_after(text, "module"):
            self.only_from[_ticked(module)[0]] = _ticked(importer)[0]

    def layer(self, module: str) -> str:
        """Layer of a module name relative to the package (``rl.runner``), by its longest listed prefix."""
        best = ""
        for prefix in self.layer_of_prefix:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best = prefix
        if not best:
            raise KeyError(module)
        return self.layer_of_prefix[best]

    def violation(self, src: str, dst: str) -> str:
        """Why ``src`` may not import ``dst`` (module names relative to the package), or ''."""
        for private, importer in self.only_from.items():
            if (dst == private or dst.startswith(private + ".")) and not (
                src == importer or src.startswith(private) or src == private.rsplit(".", 1)[0]
            ):
                return f"{dst} may only be imported from {importer}"
        a, b = self.layer(src), self.layer(dst)
        if a == b or b in self.allowed[a]:
            return ""
        if any(dst == m or dst.startswith(m + ".") for m in self.allowed_modules[a]):
            return ""
        return f"layer {a!r} may not import layer {b!r}"


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(source: str, module: str, is_package: bool) -> Iterator[Tuple[int, str]]:
    """(line, imported module relative to the package) of every mimictools import, relative ones resolved."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mimictools."):
                    yield node.lineno, alias.name[len("mimictools.") :]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("mimictools"):
                target = node.module[len("mimictools") :].lstrip(".")
            else:
                continue
            if not target:  # "from mimictools import x": a module, or an attribute of the root (__version__)
                for alias in node.names:
                    if (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").exists():
                        yield node.lineno, alias.name
            else:
                for alias in node.names:
                    # "from mimictools.app import run" imports the module app.run
                    sub = f"{target}.{alias.name}"
                    yield (
                        node.lineno,
                        sub if (PACKAGE / Path(*sub.split("."))).with_suffix(".py").exists() else target,
                    )


def check(rules: Rules, files: Dict[str, str]) -> List[str]:
    """Violations in ``files`` (module name -> source); module names relative to the package."""
    out = []
    for module, source in files.items():
        is_pkg = module.endswith("__init__")
        name = module[: -len(".__init__")] if is_pkg else module
        for line, dst in _imports(source, name or "", is_pkg):
            why = rules.violation(name, dst)
            if why:
                out.append(f"mimictools/{module.replace('.', '/')}.py:{line}: imports {dst}: {why}")
    return out


def _package_files() -> Dict[str, str]:
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(rel.parts)
        if name == "__init__":
            continue  # the package root: nothing but a docstring and the version
        files[name] = path.read_text(encoding="utf-8")
    return files


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules(DOC.read_text(encoding="utf-8"))


def test_every_module_has_a_layer(rules):
    missing = []
    for name in _package_files():
        try:
            rules.layer(name[: -len(".__init__")] if name.endswith(".__init__") else name)
        except KeyError:
            missing.append(name)
    assert not missing, f"modules in no layer of docs/architecture.md: {missing}"


def test_imports_follow_the_layer_table(rules):
    violations = check(rules, _package_files())
    assert not violations, "imports against docs/architecture.md:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    ("module", "source", "expect"),
    [
        (
            "rl.planted",
            "from mimictools.app.run import resolve_run\n",
            "layer 'rl' may not import layer 'app'",
        ),
        ("tasks.planted", "def f():\n    from mimictools.rl import runner\n", "may not import layer 'rl'"),
        (
            "rl.planted",
            "from mimictools.tasks.deepmimic import DeepMimicEnv\n",
            "may not import layer 'tasks'",
        ),
        ("cli.planted", "from mimictools.engines.mujoco import MuJoCoEngine\n", "only be imported from"),
        ("engines.planted", "from ..tasks import env_api\n", "may not import layer 'tasks'"),
    ],
)
def test_a_planted_import_against_the_rules_is_caught(rules, module, source, expect):
    violations = check(rules, {module: source})
    assert len(violations) == 1 and expect in violations[0], violations


def test_allowed_imports_pass(rules):
    ok = {
        "rl.planted": "from mimictools.tasks.env_api import DoneFlag\nfrom mimictools.config.schema import AgentConfig\n",
        "engines.registry_user": "from mimictools.engines import registry\n",
        "app.planted": "from mimictools.rl.runner import Runner\nfrom mimictools.eval import rollout\n",
    }
    assert check(rules, ok) == []
