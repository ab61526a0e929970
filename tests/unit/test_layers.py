"""The layers run one way: core (``osha/``) never imports a plugin (``actors/``), the core's
modules import each other without a circle, and no module imports a module of a higher floor
(:data:`FLOORS`). Read from the source with :mod:`ast`; nothing is imported.

What counts:

- *imports actors*: any ``import actors...``, ``from actors... import ...`` or
  ``importlib.import_module("actors...")`` anywhere in a module under ``osha/``: at module
  level, inside a function or a class, under ``if TYPE_CHECKING:`` or in a ``try:``. A plugin
  is optional and found by its entry point; core must not name one.
- *an import circle*: a cycle in the graph of the imports that run when a module is imported:
  the statements at module level (including those in a module-level ``if``/``try``/``with``
  block), but not those under ``if TYPE_CHECKING:`` (they never run) nor those inside a
  function or a class body's methods (they run later, on a call). An edge goes to the module
  named: ``from osha.faults import Lease`` is an edge to ``osha/faults/__init__.py``,
  ``from osha import profile`` an edge to ``osha/profile``; a relative import is resolved
  against its package. The implicit import of a parent package (Python runs
  ``osha/faults/__init__.py`` before ``osha/faults/_lease.py``) is not an edge: every package
  would otherwise be a circle with its own modules.
- *the two ends of a child*: the parent runs the child as ``python -m NAME`` (``HOST_ARGV`` in
  ``osha/child.py``). Everything the child's package can import at run time (at any depth,
  inside functions too, but not under ``if TYPE_CHECKING:``; a module's parent packages count,
  as Python runs them first) must hold no ``osha.ledger`` module: the ledger is the parent's.
  And nothing ``osha/child.py`` can import so may be the child's package or one of its
  modules: the parent speaks to the child over the wire (:mod:`osha.wire`), not by its code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "osha"
PLUGINS = ROOT / "actors"

#: The floors, ground first: a module may import its own floor and the floors below, never one
#: above. A module belongs to the floor of the longest name it starts with (``osha`` names only
#: the package's ``__init__``); every module under ``osha/`` and ``actors/`` must belong to one:
#: a new top-level module says where it stands.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # the vocabulary every floor speaks: typed messages, errors, leaf helpers
    (
        "messages",
        (
            "osha",
            "osha.messages",
            "osha.errors",
            "osha.entrypoints",
            "osha.schema",
            "osha.textfile",
            "osha.rundir",
            "osha.redaction",
            "osha.inventory",
            "osha.ssh",
        ),
    ),
    # bytes on the wire and on disk, and what reads them back
    (
        "codec/ledger",
        (
            "osha.wire",
            "osha.record",
            "osha.ledger",
            "osha.recorder",
            "osha.audit",  # the audit contract and its judgement: the analysis reads it
            "osha.analysis",
            "osha.report",
        ),
    ),
    # the plugin contract and the processes that run plugins, supervised
    (
        "process/supervision",
        (
            "osha.plugin",
            "osha.registry",
            "osha.actorhost",
            "osha.child",
            "osha.supervisor",
            "osha.selfmon",
            "osha.testing",
        ),
    ),
    # the profile that declares a run, the fault kit, and the run tree that owns it all
    (
        "faults",
        (
            "osha.profile",
            "osha.roles",  # a target by role: the resolvers are plugins (entry points)
            "osha.schedule",
            "osha.inputs",
            "osha.faults",
            "osha.runtree",
            "osha.harness",
        ),
    ),
    ("plugins", ("actors",)),
    ("campaign", ("osha.campaign", "osha.soak")),
    ("CLI", ("osha.cli", "osha.__main__")),
)


def _modules(top: Path = CORE) -> dict[str, Path]:
    """Every module under ``top`` (osha/), by dotted name (a package by its own name)."""
    out: dict[str, Path] = {}
    for path in sorted(top.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]) -> set[str]:
    """The modules of osha/ an import statement names: ``import a.b`` names ``a.b``;
    ``from a import b`` names the module ``a.b`` if there is one, else ``a`` (``b`` is a name
    defined in ``a``)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & modules.keys()
    base = node.module or ""
    if node.level:
        anchor = package.split(".")
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    out: set[str] = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.add(sub if sub in modules else base)
    return out & modules.keys()


def _edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_of(name, path)
    edges: set[str] = set()
    for node in _module_level(tree.body):
        edges |= _targets(node, package, modules)
    edges.discard(name)
    return edges


class _RunTimeImports(ast.NodeVisitor):
    """Every import statement that can run, at any depth, except under ``if TYPE_CHECKING:``."""

    def __init__(self) -> None:
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found.append(node)


def _reach(roots: set[str], modules: dict[str, Path]) -> set[str]:
    """The modules of osha/ that importing ``roots`` can run, by imports anywhere in them
    (see :class:`_RunTimeImports`), with the parent packages of each."""
    seen: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = modules[name]
        visitor = _RunTimeImports()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        package = _package_of(name, path)
        for node in visitor.found:
            for target in _targets(node, package, modules):
                parts = target.split(".")
                todo.extend(
                    p
                    for p in (".".join(parts[:k]) for k in range(1, len(parts) + 1))
                    if p in modules
                )
    return seen


def _child_main() -> str:
    """The module the parent runs as its child: ``-m NAME`` in ``HOST_ARGV`` of osha/child.py."""
    tree = ast.parse((CORE / "child.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "HOST_ARGV"
            and isinstance(node.value, ast.Tuple)
        ):
            argv = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
            return str(argv[argv.index("-m") + 1])
    raise AssertionError("osha/child.py has no HOST_ARGV tuple naming the child's module")


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def _imported(node: ast.AST) -> list[str]:
    """The absolute module names ``node`` imports: an import statement, or a call of
    ``importlib.import_module``/``__import__`` with a literal name."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""] if node.level == 0 else []
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def test_no_core_module_imports_a_plugin() -> None:
    offenders: list[str] = []
    for path in _modules().values():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):  # every import, also inside functions
            named = _imported(node)
            offenders.extend(
                f"{path.relative_to(ROOT)}:{node.lineno} imports {n}"
                for n in named
                if n == "actors" or n.startswith("actors.")
            )
    assert offenders == [], "core imports a plugin:\n" + "\n".join(offenders)


def test_no_import_circle_in_core() -> None:
    modules = _modules()
    graph = {name: _edges(name, path, modules) for name, path in modules.items()}
    assert len(graph) > 50  # the walk found the core
    assert "osha.faults._lease" in graph["osha.faults"]  # and reads its imports
    circles = _circles(graph)
    assert circles == [], "import circles in osha/:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_a_circle() -> None:
    """The check above cannot pass by a blind finder: it sees a planted circle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [["a", "b", "c"]]


def _floor(name: str) -> int | None:
    """The index in :data:`FLOORS` of the module ``name``; None if it has no floor."""
    best: tuple[int, int] | None = None  # (length of the matched name, floor)
    for floor, (_label, names) in enumerate(FLOORS):
        for prefix in names:
            below = prefix != "osha" and name.startswith(prefix + ".")  # "osha": only itself
            if (name == prefix or below) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), floor)
    return None if best is None else best[1]


def _named(node: ast.AST, known: dict[str, Path]) -> list[str]:
    """The modules an import names, as :func:`_imported`, but ``from a import b`` names the
    module ``a.b`` when there is one (``from osha import profile`` is ``osha.profile``)."""
    names = _imported(node)
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        subs = [f"{node.module}.{alias.name}" for alias in node.names]
        names = [sub if sub in known else node.module for sub in subs]
    return names


def _floor_breaches(sources: dict[str, Path]) -> list[str]:
    """Every import, anywhere in a module (in a function, under TYPE_CHECKING: a dependency
    all the same), that names a module of a higher floor than its own."""
    out: list[str] = []
    for name, path in sources.items():
        own = _floor(name)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        assert own is not None, f"{shown} has no floor: add it to FLOORS"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in sorted(set(_named(node, sources))):
                floor = _floor(target)
                if floor is not None and floor > own:
                    out.append(
                        f"{shown}:{getattr(node, 'lineno', 0)} "
                        f"({FLOORS[own][0]}) imports {target} ({FLOORS[floor][0]})"
                    )
    return out


def test_no_module_imports_a_higher_floor() -> None:
    sources = {**_modules(CORE), **_modules(PLUGINS)}
    assert "osha.campaign.session" in sources
    assert "actors.testing.markers" in sources
    breaches = _floor_breaches(sources)
    assert breaches == [], "imports that run up a floor:\n" + "\n".join(breaches)


def test_the_floor_check_sees_a_back_arrow(tmp_path: Path) -> None:
    """The check above cannot pass by a blind walk: a fault module that imports the campaign
    (inside a function, as the harness once did) is a breach; the other way round is not."""
    low = tmp_path / "low.py"
    low.write_text("def f() -> None:\n    from osha.campaign import session\n")
    high = tmp_path / "high.py"
    high.write_text("from osha import faults\n")
    breaches = _floor_breaches({"osha.faults.low": low, "osha.campaign.high": high})
    assert [b.split(" ", 1)[1] for b in breaches] == ["(faults) imports osha.campaign (campaign)"]


def test_the_child_imports_no_ledger_code() -> None:
    modules = _modules()
    main = _child_main()
    child_side = {n for n in modules if n == main or n.startswith(main + ".")}
    assert main in child_side
    reached = _reach(child_side, modules)
    assert {"osha.wire", "osha.plugin", "osha.registry"} <= reached  # the walk reads imports
    ledger = sorted(n for n in reached if n == "osha.ledger" or n.startswith("osha.ledger."))
    assert ledger == [], f"the child ({main}) can import ledger code: {ledger}"


def test_the_parent_never_imports_the_child_main() -> None:
    modules = _modules()
    main = _child_main()
    reached = _reach({"osha.child"}, modules)
    assert {"osha.wire", "osha.messages"} <= reached  # the walk reads imports
    child_side = sorted(n for n in reached if n == main or n.startswith(main + "."))
    assert child_side == [], f"osha/child.py can import the child's modules: {child_side}"
