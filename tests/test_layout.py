"""The code's layout: no import cycle between modules (imports inside functions count), the packages depend one way
(training -> export -> engine, bench on top), so do the engine's rooms (kernels at the bottom, the cluster and the
command line at the top), `EngineConfig` loads nothing heavy, the engine never imports TensorFlow, and no file is
over 400 lines."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"engine": "oppy.engine", "training": "oppy.training", "export": "oppy.export", "bench": "oppy.bench"}
#: what each package may import of the others
MAY_IMPORT = {"oppy.engine": set(), "oppy.export": {"oppy.engine"}, "oppy.training": {"oppy.engine", "oppy.export"},
              "oppy.bench": {"oppy.engine", "oppy.export", "oppy.training"}}
MAX_LINES = 400
#: the engine's rooms from the bottom up: a module may import its own room and the rooms below it, so the kernels
#: import nothing else of the engine (docs/layout.md)
ROOMS = ("kernels", "base", "inputs", "outputs", "overlays", "spine", "cluster", "front")
BASE = {"errors", "frames", "config"}
SPINE = {"api", "journey", "pipeline", "batches", "palette", "temporal", "contract", "session", "render"}
FRONT = {"cli", "launch"}
#: the one import upwards: config checks `--camera` with the frame facts' camera words (standard library only)
UPWARDS = {("oppy.engine.config", "oppy.engine.inputs.facts")}


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def lazy_names(path: Path, package: str) -> dict[str, str]:
    """A package's names its `__init__` imports when first used (`_PUBLIC`: name -> relative module)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_PUBLIC" for t in node.targets):
            return {name: package + module for name, module in ast.literal_eval(node.value).items()}
    return {}


def imported(name: str, path: Path, known: set[str], lazy: dict[str, dict[str, str]] | None = None) -> set[str]:
    """The project's modules `name` (at `path`) imports anywhere in its text; `lazy`: per package, the modules its
    names come from when its `__init__` imports them on first use (`from oppy.engine import Engine` is api's)."""
    lazy = lazy or {}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}
            targets |= {lazy[base][alias.name] for alias in node.names if alias.name in lazy.get(base, {})}
    return {target for target in targets if target in known and target != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    lazy = {name: lazy_names(path, name) for name, path in found.items() if path.name == "__init__.py"}
    return {name: imported(name, path, set(found), lazy) for name, path in found.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        trail.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*trail[trail.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        trail.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_hidden_behind_other_modules():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"d", "b"}, "d": set()}) == ["b", "c", "b"]


def test_a_relative_import_inside_a_function_counts(tmp_path):
    source = tmp_path / "prepare.py"
    source.write_text("def sheets():\n    from .sheets import contact_sheet\n    from . import evaluate\n")
    known = {"oppy.training.sheets", "oppy.training.evaluate", "oppy.training.prepare"}
    assert imported("oppy.training.prepare", source, known) == {"oppy.training.sheets", "oppy.training.evaluate"}


def test_a_name_a_package_imports_on_first_use_counts_as_its_module(tmp_path):
    init = tmp_path / "__init__.py"
    init.write_text('_PUBLIC = {"Engine": ".api", "OppyError": ".errors"}\n')
    lazy = {"oppy.engine": lazy_names(init, "oppy.engine")}
    assert lazy["oppy.engine"] == {"Engine": "oppy.engine.api", "OppyError": "oppy.engine.errors"}
    journey = tmp_path / "journey.py"
    journey.write_text("from oppy.engine import Engine\n")
    known = {"oppy.engine", "oppy.engine.api", "oppy.engine.journey"}
    assert imported("oppy.engine.journey", journey, known, lazy) == {"oppy.engine", "oppy.engine.api"}


def test_no_module_imports_itself_through_others():
    assert cycle(graph()) is None


def test_the_packages_depend_one_way():
    wrong = sorted(f"{name} imports {target}" for name, targets in graph().items() for target in targets
                   if (mine := ".".join(name.split(".")[:2])) != (theirs := ".".join(target.split(".")[:2]))
                   and theirs not in MAY_IMPORT[mine])
    assert wrong == []


def room(module: str) -> str:
    """The engine room an `oppy.engine` module is in."""
    parts = module.split(".")[2:]
    if not parts:
        return "base"  # the package's own __init__
    if parts[0] in ("kernels", "inputs", "outputs", "overlays", "cluster"):
        return parts[0]
    for name, members in (("base", BASE), ("spine", SPINE), ("front", FRONT)):
        if parts[0] in members:
            return name
    raise AssertionError(f"{module} is in no room: add it to BASE, SPINE or FRONT in tests/test_layout.py")


def upwards(edges: dict[str, set[str]]) -> list[str]:
    """Each engine import from a room into a room above it (but `UPWARDS`)."""
    return sorted(f"{name} ({room(name)}) imports {target} ({room(target)})"
                  for name, targets in edges.items() if name.startswith("oppy.engine") for target in targets
                  if target.startswith("oppy.engine.") and (name, target) not in UPWARDS
                  and ROOMS.index(room(target)) > ROOMS.index(room(name)))


def test_the_engine_rooms_depend_one_way():
    assert upwards(graph()) == []


def test_a_kernel_importing_the_errors_or_an_input_importing_a_sink_is_upwards():
    edges = {"oppy.engine.kernels.lab": {"oppy.engine.errors", "oppy.engine.kernels.parallel"},
             "oppy.engine.inputs.sources": {"oppy.engine.outputs.sinks", "oppy.engine.frames"},
             "oppy.engine.cluster.driver": {"oppy.engine.api"}, "oppy.engine.cli": {"oppy.engine.cluster.driver"}}
    assert upwards(edges) == ["oppy.engine.inputs.sources (inputs) imports oppy.engine.outputs.sinks (outputs)",
                              "oppy.engine.kernels.lab (kernels) imports oppy.engine.errors (base)"]


def test_every_engine_module_is_in_a_room_and_every_room_is_used():
    rooms = {room(name) for name in modules() if name.startswith("oppy.engine")}  # room() fails on a stray module
    assert rooms == set(ROOMS)
    with pytest.raises(AssertionError, match="in no room"):
        room("oppy.engine.stray")


def test_the_one_upward_import_reaches_only_the_standard_library():
    for _, target in UPWARDS:
        path = modules()[target]
        names = {(alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
                 for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in node.names if not (isinstance(node, ast.ImportFrom) and node.level)}
        assert names <= set(sys.stdlib_module_names), f"{target} imports {sorted(names - set(sys.stdlib_module_names))}"


def test_an_engine_config_loads_nothing_heavy():
    code = ("import sys\nfrom oppy.engine.config import EngineConfig\n"
            "EngineConfig(codec='libx265', caption='{sol}', camera='navcam', chroma_scale='0.5', temporal=0.5)\n"
            "print(sorted(m for m in ('onnxruntime', 'av', 'cv2', 'numba', 'numpy') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


@pytest.mark.parametrize("name", ["tensorflow", "keras", "tf2onnx"])
def test_the_engine_never_imports_tensorflow(name):
    users = [str(path.relative_to(ROOT)) for module, path in modules().items() if module.startswith("oppy.engine")
             and any(isinstance(node, (ast.Import, ast.ImportFrom))
                     and any((alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0] == name
                             for alias in node.names)
                     for node in ast.walk(ast.parse(path.read_text())))]
    assert users == []


def test_no_file_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): count for path in modules().values()
            if (count := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
