"""The unit tests need neither torch nor llama.cpp: run them in a process where importing either fails."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

BLOCKED = ("torch", "llama_cpp", "sentence_transformers", "transformers")
RUNNER = f"""
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Absent())
import pytest
sys.exit(pytest.main(["-m", "not heavy", "-q", "-p", "no:cacheprovider", "--ignore", "tests/test_light.py", "tests"]))
"""


@pytest.mark.slow
def test_unit_tests_run_without_torch_or_llama_cpp() -> None:
    done = subprocess.run([sys.executable, "-c", RUNNER], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout
