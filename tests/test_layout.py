"""The package's layout is the pipeline: stage subpackages that import only backwards."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src/brats_unet"
SHARED = ("io", "labels", "runtime", "logs", "voxels")
STAGES = ("data", "preprocessing", "models", "training", "inference", "evaluation", "reporting")
ON_TOP = ("config", "segment", "doctor", "cli")  # above the stages: may import any of them
FRAMEWORKS = ("keras", "tensorflow", "torch", "jax")
KERAS_FREE = ("evaluation", "reporting")


def rank(part: str) -> int:
    """Where a top-level part of the package sits: shared modules first, then the stages in
    pipeline order, then the applications on top."""
    if part in SHARED:
        return 0
    if part in STAGES:
        return 1 + STAGES.index(part)
    assert part in ON_TOP, f"brats_unet.{part} is in no stage: add it to one"
    return 1 + len(STAGES)


def modules() -> dict[str, Path]:
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
            for path in sorted(PACKAGE.rglob("*.py")) if path.name != "__init__.py"}


def imports(path: Path) -> set[str]:
    """Every module that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from brats_unet.data import qc`` imports brats_unet.data.qc
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if node.module.startswith("brats_unet"))
    return found


def test_every_module_is_in_a_stage_or_shared_and_no_module_is_left_flat():
    parts = {name.split(".")[0] for name in modules()}
    assert parts <= set(SHARED) | set(STAGES) | set(ON_TOP)
    assert {name.split(".")[0] for name in modules() if "." in name} == set(STAGES)


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_imports_only_from_its_stage_earlier_stages_and_shared_ones(module: str):
    own = rank(module.split(".")[0])
    for imported in imports(modules()[module]):
        parts = imported.split(".")
        if parts[0] != "brats_unet" or len(parts) < 2 or parts[1] == "__init__":
            continue
        assert rank(parts[1]) <= own, f"brats_unet.{module} imports {imported}, a later stage"
        if own == 0:
            assert parts[1] in SHARED, f"shared brats_unet.{module} imports stage {imported}"


@pytest.mark.parametrize("module", [m for m in sorted(modules()) if m.split(".")[0] in KERAS_FREE])
def test_evaluation_and_reporting_never_import_a_deep_learning_framework(module: str):
    for imported in imports(modules()[module]):
        assert imported.split(".")[0] not in FRAMEWORKS, f"brats_unet.{module} imports {imported}"


def test_evaluation_and_reporting_load_no_framework_even_indirectly():
    names = [f"brats_unet.{m}" for m in sorted(modules()) if m.split(".")[0] in KERAS_FREE]
    code = ("import importlib, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            f"print(sorted(f for f in {FRAMEWORKS!r} if f in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_package_docstring_names_every_module():
    import brats_unet

    for module in modules():
        assert f"``{module.split('.')[-1]}``" in brats_unet.__doc__, module


def test_imports_are_sorted_in_one_order_everywhere():
    """Standard library, third party, this package, then the tests' and benches' own helpers
    (pyproject's [tool.ruff.lint.isort]); ``ruff check --select I --fix`` puts them right."""
    ruff = Path(sys.executable).with_name("ruff")
    folders = ["src", "tests", "bench", "scripts"]
    result = subprocess.run([str(ruff), "check", "--select", "I", "--no-cache", *folders],
                            cwd=PACKAGE.parents[1], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_is_over_400_lines_and_no_function_over_60(module: str):
    source = modules()[module].read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{module}: split it by what its parts do"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{module}.{node.name}: {length} lines"
