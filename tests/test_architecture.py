"""Architecture rules: imports point inward only, and no committed file names a package registry.

Layers, outermost first: interfaces/ and workers/ (adapters), application/, domain/ (the core).
Every ``import`` and ``from ... import`` (relative ones resolved, nested and TYPE_CHECKING ones
included) of every .py file under those packages is read with ``ast``.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("domain", "application", "interfaces", "workers")

# Third-party code the domain may use: the aggregate base classes and the holiday calendar.
DOMAIN_THIRD_PARTY = ("eventsourcing.domain", "eventsourcing.utils", "chinese_calendar")
APPLICATION_FORBIDDEN = ("interfaces", "workers", "litestar", "dramatiq")
# The composition root (app.py, which runs the embedded relay and worker) and the CLI (which
# starts the worker processes) are the interfaces that may build workers.
INTERFACES_ALLOWED_TO_IMPORT_WORKERS = frozenset({"interfaces.cli", "interfaces.app"})

# Built by concatenation so that this file does not itself name them.
REGISTRY_HOSTS = (
    "pypi" + ".org",
    "files" + ".pythonhosted" + ".org",
    "registry" + ".npmjs" + ".org",
    "deb" + ".debian" + ".org",
)
NEVER_SCANNED = frozenset(
    {".git", ".venv", ".venv-tools", ".mypy_cache", ".ruff_cache", ".pytest_cache", "var"}
)


@dataclass(frozen=True)
class Import:
    """One imported name, as a full dotted path, and where it is imported."""

    importer: str  # dotted module name of the importing file
    target: str  # e.g. "eventsourcing.domain.Aggregate" for `from eventsourcing.domain import ...`
    where: str  # "path:line"

    def __str__(self) -> str:
        return f"{self.where}: {self.importer} imports {self.target}"


def module_name(path: Path, root: Path) -> str:
    """The dotted module name of a file under root (a package's __init__ names the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool, where: str) -> Iterator[Import]:
    """Every import in source, relative ones resolved against module."""
    tree = ast.parse(source, filename=where)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, f"{where}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                drop = node.level - 1
                if drop > len(anchor) - 1:
                    msg = f"{where}:{node.lineno}: relative import goes above the top package"
                    raise ValueError(msg)
                anchor = anchor[: len(anchor) - drop]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", f"{where}:{node.lineno}")


def layer_imports(layer: str, root: Path = ROOT) -> list[Import]:
    found: list[Import] = []
    for path in sorted((root / layer).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        found.extend(
            imports_of(
                path.read_text(encoding="utf-8"),
                module_name(path, root),
                path.name == "__init__.py",
                str(path.relative_to(root)),
            )
        )
    return found


def within(target: str, prefixes: Iterable[str]) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


def top(target: str) -> str:
    return target.split(".", 1)[0]


def report(bad: list[Import]) -> str:
    return "imports that point outward:\n" + "\n".join(f"  {b}" for b in bad)


def test_every_layer_is_a_package_the_checks_can_read() -> None:
    for layer in LAYERS:
        assert (ROOT / layer / "__init__.py").is_file(), f"{layer}/ is not a package"
    assert layer_imports("domain"), "no import found in domain/: the scan reads nothing"
    assert layer_imports("application"), "no import found in application/: the scan reads nothing"


def test_from_and_relative_imports_resolve_to_full_module_names() -> None:
    source = (
        "import os.path\n"
        "from . import errors\n"
        "from .windows import Window\n"
        "from .. import workers\n"
        "from ..interfaces.http import app\n"
        "def later() -> None:\n"
        "    from litestar import Litestar\n"
    )
    found = [i.target for i in imports_of(source, "application.sub.mod", False, "x.py")]
    assert found == [
        "os.path",
        "application.sub.errors",
        "application.sub.windows.Window",
        "application.workers",
        "application.interfaces.http.app",
        "litestar.Litestar",
    ]
    in_package = [i.target for i in imports_of("from . import a\n", "domain", True, "x.py")]
    assert in_package == ["domain.a"]
    with pytest.raises(ValueError, match="above the top package"):
        list(imports_of("from .. import x\n", "domain.project", False, "x.py"))


def test_domain_imports_only_itself_the_stdlib_and_the_allowed_third_party() -> None:
    bad = [
        i
        for i in layer_imports("domain")
        if not (
            top(i.target) == "domain"
            or top(i.target) in sys.stdlib_module_names
            or within(i.target, DOMAIN_THIRD_PARTY)
        )
    ]
    assert not bad, report(bad)


def test_domain_never_imports_application_interfaces_or_workers() -> None:
    outer = ("application", "interfaces", "workers")
    bad = [i for i in layer_imports("domain") if within(i.target, outer)]
    assert not bad, report(bad)


def test_application_never_imports_interfaces_workers_litestar_or_dramatiq() -> None:
    bad = [i for i in layer_imports("application") if within(i.target, APPLICATION_FORBIDDEN)]
    assert not bad, report(bad)


def test_interfaces_import_workers_only_from_the_composition_root_and_cli() -> None:
    bad = [
        i
        for i in layer_imports("interfaces")
        if within(i.target, ("workers",)) and i.importer not in INTERFACES_ALLOWED_TO_IMPORT_WORKERS
    ]
    assert not bad, report(bad)


def test_workers_never_import_interfaces() -> None:
    bad = [i for i in layer_imports("workers") if within(i.target, ("interfaces",))]
    assert not bad, report(bad)


def committed_files(root: Path) -> list[Path]:
    """Tracked files in a git checkout; otherwise every file but envs, caches and data."""
    git = shutil.which("git")
    if git and (root / ".git").exists():
        listed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "-C", str(root), "ls-files", "-z"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [root / name for name in listed.split("\0") if name]
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not NEVER_SCANNED.intersection(p.relative_to(root).parts)
    ]


def test_no_committed_text_file_names_a_package_registry_host() -> None:
    hits: list[str] = []
    for path in committed_files(ROOT):
        if not path.is_file():  # tracked but deleted in the work tree
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary
            continue
        text = data.decode("utf-8", errors="replace").lower()
        hits.extend(f"{path.relative_to(ROOT)}: {host}" for host in REGISTRY_HOSTS if host in text)
    assert not hits, "registry hosts named in committed files:\n" + "\n".join(hits)
