"""Every README shell block marked `<!-- offline-test -->` runs as written on a fresh copy of the shipped data.

The blocks are read from README.md at test time (nothing is copied here). Each runs with `bash -euo pipefail` in a
temporary folder holding copies of `data/` and `examples/`, with this interpreter's environment activated (its
`bin/` first on PATH, as `. .venv/bin/activate` does) and the Hub offline. A block that fails shows its output.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from unimse_testing import REPO_ROOT

MARKER = "<!-- offline-test -->"
BLOCK = re.compile(r"^" + re.escape(MARKER) + r"[ \t]*\n(?:[ \t]*\n)*```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def offline_blocks(readme: str) -> list[tuple[int, str]]:
    """`(line number, script)` of each ```bash block that directly follows the offline-test marker."""
    return [(readme.count("\n", 0, match.start()) + 1, match.group(1)) for match in BLOCK.finditer(readme)]


README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = offline_blocks(README)


def test_the_marker_is_recognised_only_before_a_bash_block():
    text = f"{MARKER}\n```bash\necho one\n```\n\n{MARKER}\n\n```bash\necho two\n```\n{MARKER}\n```python\nx = 1\n```\n"
    assert offline_blocks(text) == [(1, "echo one\n"), (6, "echo two\n")]


def test_the_readme_marks_some_blocks_for_offline_testing():
    assert BLOCKS, f"README.md has no {MARKER} bash block"


def _fresh_copy(root: Path) -> Path:
    for folder in ("data", "examples"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize("line, script", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_block_runs_offline_as_written(tmp_path, line, script):
    workdir = _fresh_copy(tmp_path)
    environment = dict(os.environ)
    environment["PATH"] = str(Path(sys.executable).parent) + os.pathsep + environment.get("PATH", "")
    environment["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    environment.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
                       TOKENIZERS_PARALLELISM="false")
    environment.pop("PYTHONPATH", None)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=environment,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (f"README.md:{line} failed ({result.returncode}):\n{script}\n--- stdout\n"
                                    f"{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
