"""What is installed and who imports what: only numbacnn top-level (its drawing package is numbacnn.viz), click
only in the CLI, viz draws and never imports the kernels."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "numbacnn"


def _imports(path):
    """Absolute module names imported by ``path`` (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def test_only_numbacnn_is_importable_outside_the_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ok = subprocess.run([sys.executable, "-c", "import numbacnn.viz; print(numbacnn.viz.__name__)"], cwd=tmp_path,
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and ok.stdout.strip() == "numbacnn.viz", ok.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-c", "import viz"], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode != 0 and "No module named 'viz'" in bad.stderr
    assert not (ROOT / "viz").exists()


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_click_only_in_the_cli(path):
    cli = path == PACKAGE / "cli.py" or (PACKAGE / "commands") in path.parents
    if not cli:
        assert not any(n == "click" or n.startswith("click.") for n in _imports(path))


@pytest.mark.parametrize("path", sorted((PACKAGE / "viz").glob("*.py")), ids=lambda p: p.name)
def test_viz_draws_and_never_imports_the_kernels(path):
    allowed = {"numbacnn", "numbacnn.speedups", "numbacnn._io", "numbacnn._io.atomic_path",
               "numbacnn._io.NotAFileTargetError", "numbacnn._paths", "numbacnn._paths.OutputPathError", "numbacnn._paths.check_output_path",
               "numbacnn.data", "numbacnn.data.CLASSES"}  # output-path checks and Fashion-MNIST's class names
    ours = {n for n in _imports(path) if n.split(".")[0] == "numbacnn" and not n.startswith("numbacnn.viz")}
    assert ours <= allowed, f"{path.name} imports {sorted(ours - allowed)}"
