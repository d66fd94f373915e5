"""Static checks of what the code may do with files and commands."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sorted([*(REPO / "src/brats_unet").rglob("*.py"), *(REPO / "scripts").glob("*.py")])
WORKFLOW = [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]


def calls(name: str):
    """(file, call) for every call of an attribute or function ``name`` in the package and scripts."""
    for path in PYTHON:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    yield path.name, node


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def test_arrays_are_never_loaded_with_pickle():
    found = list(calls("load"))
    numpy_loads = [(f, c) for f, c in found
                   if isinstance(c.func, ast.Attribute) and getattr(c.func.value, "id", "") == "np"]
    assert numpy_loads, "expected np.load calls to check"
    for file, call in numpy_loads:
        assert keyword(call, "allow_pickle") is False, f"{file}:{call.lineno}"


def test_models_are_loaded_in_keras_safe_mode():
    found = list(calls("load_model"))
    assert found
    for file, call in found:
        assert keyword(call, "safe_mode") is True, f"{file}:{call.lineno}"


def test_no_rule_runs_a_shell_command():
    # Config values reach jobs only as Python objects (script: + params:, or a run: block that
    # calls the package), never through a shell.
    runs = []
    for path in WORKFLOW:
        text = path.read_text()
        assert not re.search(r"^\s+shell:", text, re.MULTILINE), path.name
        assert not re.search(r"\bos\.system\(|shell\(|subprocess", text), path.name
        runs += [(path.name, block) for block in re.findall(r"^    run:\n((?:        .*\n)+)",
                                                            text, re.MULTILINE)]
    # the one run: block, the local job that puts a subject's prediction in place
    assert [name for name, _ in runs] == ["evaluate.smk"]
    assert "take_from_batch(" in runs[0][1]


def test_subprocesses_get_argument_lists_not_shell_strings():
    for name in ("run", "Popen", "check_output", "call"):
        for file, call in calls(name):
            if keyword(call, "shell") is not None:
                assert keyword(call, "shell") is False, f"{file}:{call.lineno}"
