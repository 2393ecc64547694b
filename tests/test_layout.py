"""The layout rules of issue #13: small modules with a docstring that names their place, one dispatch layer."""
import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("numbacnn", "benchmarks", "examples") for p in (ROOT / d).rglob("*.py"))
MAX_LINES = 450


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small_and_says_what_it_is(path):
    text = path.read_text()
    assert text.count("\n") <= MAX_LINES, f"{path.name} has {text.count(chr(10))} lines (at most {MAX_LINES})"
    doc = ast.get_docstring(ast.parse(text))
    assert doc and doc.strip().splitlines()[0].strip(), f"{path.name} has no module docstring"


def test_viz_is_installed_under_numbacnn():
    assert importlib.util.find_spec("numbacnn.viz") is not None


@pytest.mark.parametrize("family", ["conv", "pool", "functional", "optim"])
def test_targets_share_launcher_names(family):
    """numbacnn.cpu.<family> and numbacnn.cuda.<family> offer the same public launchers (stumpy's stump/gpu_stump),
    and the CPU modules never import the public layer (which imports them)."""
    cpu = ast.parse((ROOT / "numbacnn" / "cpu" / f"{family}.py").read_text())
    cuda = ast.parse((ROOT / "numbacnn" / "cuda" / f"{family}.py").read_text())

    def launchers(tree):
        return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
                and not any(isinstance(d, (ast.Call, ast.Attribute, ast.Name)) for d in n.decorator_list)}

    assert launchers(cpu) == launchers(cuda)
    for tree in (cpu, cuda):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in {"conv", "pool", "functional", "optim"} or node.level != 2, (
                    f"a {family} target module imports the public layer numbacnn.{node.module}")


@pytest.mark.parametrize("family", ["conv", "pool", "functional"])
def test_every_target_lists_its_kernels_and_kernel_1_exists(family):
    import importlib

    cpu = importlib.import_module(f"numbacnn.cpu.{family}")
    assert cpu.KERNELS and all(1 in numbers for numbers in cpu.KERNELS.values())


def test_no_kernel_copies_in_trace_or_viz():
    """The CUDA pictures come from watching the real kernels (numbacnn.trace.cuda_observe), never from a copy of
    them: no @cuda.jit anywhere under numbacnn/trace or numbacnn/viz (issue #17's check)."""
    files = [p for folder in ("trace", "viz") for p in sorted((ROOT / "numbacnn" / folder).rglob("*.py"))]
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
            if "cuda.jit" in line]
    assert hits == []


def test_mutation_list_is_not_stale():
    """Each planted bug of tests/mutation/mutations.py still finds its snippet (``count`` times) in its file: a
    kernel that moves must take its mutation along, or the mutation check silently stops checking it."""
    spec = importlib.util.spec_from_file_location("mutations", ROOT / "tests" / "mutation" / "mutations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stale = [f"{m['name']} ({m['path']}: found {(ROOT / m['path']).read_text().count(m['old'])}, "
             f"want {m.get('count', 1)})" for m in module.MUTATIONS
             if (ROOT / m["path"]).read_text().count(m["old"]) != m.get("count", 1)]
    assert not stale, "stale mutations: " + "; ".join(stale)
