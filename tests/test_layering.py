"""The layering rules, proven on the source:

- the core knows no platform SDK: importing every `bot` module loads no slack/discord module;
- adapters import from `bot` only the seam: `service`, `messages`, `ports`, `commands` (to
  register commands) and `config`;
- adapters use the service's methods, never its insides (`service.store`, ...);
- there is no import cycle inside `bot/` (imports inside functions count: a cycle hidden in a
  function is still two modules that cannot be understood apart).
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import bot

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("slack_bolt", "slack_sdk", "discord", "adapters", "aiohttp")
SEAM = {"bot.service", "bot.messages", "bot.ports", "bot.commands", "bot.config"}


def test_importing_every_core_module_loads_no_platform_sdk() -> None:
    modules = sorted(
        m.name for m in pkgutil.walk_packages(bot.__path__, "bot.") if m.name != "bot.__main__"
    )
    assert "bot.service" in modules and "bot.runtime" in modules and "bot.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"


def test_no_core_file_imports_an_adapter_or_sdk_at_module_level() -> None:
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("import ", "from ")) and line.split()[1].split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.name}: {line}")
    assert offenders == []


# ------------------------------------------------------------------------ the import graph


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, also inside functions, except under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if _type_checking_only(child):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        else:
            yield from _import_nodes(child)


def imported(path: Path, name: str | None = None) -> set[str]:
    """The dotted names module `name` (at `path`) imports: `from bot import x` gives `bot`
    and `bot.x`; relative imports are resolved."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def core_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in (ROOT / "bot").rglob("*.py")}
    return {
        name: {m for m in imported(path) if m in paths and m != name}
        for name, path in paths.items()
    }


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One path per cycle, as module names from a module back to itself (depth-first)."""
    cycles: list[list[str]] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        if node in path:
            cycle = path[path.index(node) :] + [node]
            if set(cycle) not in [set(c) for c in cycles]:
                cycles.append(cycle)
            return
        if node in done:
            return
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        path.pop()
        done.add(node)

    for start in sorted(graph):
        visit(start)
    return cycles


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot import store\n"
        "def f():\n    from bot.search import parse_query\n    import bot.index\n"
        "    from .query import Query\n"
    )
    found = imported(source, "bot.m")
    assert {"bot.search", "bot.index", "bot.query"} <= found and "bot.store" not in found


def test_no_import_cycle_inside_the_core() -> None:
    graph = core_graph()
    assert "bot.store" in graph["bot.service"]  # the graph is real
    cycles = [" -> ".join(cycle) for cycle in find_cycles(graph)]
    assert cycles == []


def test_adapters_import_only_the_seam_of_the_core() -> None:
    modules = sorted((ROOT / "adapters").rglob("*.py"))
    assert {p.name for p in modules} >= {"console.py", "slack.py", "discord.py"}
    wrong = {}
    for path in modules:
        core = {name for name in imported(path) if name == "bot" or name.startswith("bot.")}
        # `from bot.messages import Reply` names `bot.messages.Reply`: judge the module.
        used = {name for name in core if name not in SEAM and not _inside_seam(name)}
        if used:
            wrong[path.name] = sorted(used)
    assert wrong == {}


def _inside_seam(name: str) -> bool:
    return any(name.startswith(f"{module}.") for module in SEAM)


def reaches_past_the_service(source: str) -> list[str]:
    """`service.store`, `self.service.ledger`, ...: an adapter using the service's insides."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute) or node.attr.startswith("__"):
            continue
        owner = node.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        if name == "service" and node.attr in {"store", "ledger", "settings", "remote", "outbox"}:
            found.append(ast.unparse(node))
    return found


def test_adapters_talk_only_to_the_service() -> None:
    assert reaches_past_the_service("x = self.service.store.subscriptions(k)") == [
        "self.service.store"
    ]
    wrong = {
        path.name: used
        for path in sorted((ROOT / "adapters").rglob("*.py"))
        if (used := reaches_past_the_service(path.read_text()))
    }
    assert wrong == {}
