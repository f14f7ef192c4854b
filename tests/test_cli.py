"""`unimse predict`: runs a checkpoint's own code only with `--trust_remote_code`."""

import json
from pathlib import Path

import numpy as np
import pytest

from unimse_hf import cli
from unimse_hf.checkpoint import HUB_MODULES, save_checkpoint
from unimse_testing import tiny_model, tiny_processor


@pytest.fixture
def marked_checkpoint(tmp_path) -> tuple[Path, Path]:
    """A saved checkpoint whose every Hub module appends its name to a marker file when imported."""
    directory = save_checkpoint(tiny_model(), tiny_processor(), tmp_path / "ckpt")
    marker = tmp_path / "ran-checkpoint-code.txt"
    for name in HUB_MODULES:
        module = directory / name
        module.write_text(module.read_text() + f"\nopen({str(marker)!r}, 'a').write({name!r} + '\\n')\n")
    return directory, marker


def _predict(directory: Path, capsys, *extra: str) -> dict:
    cli.main(["predict", "--model", str(directory), "--text", "it was really good", *extra])
    return json.loads(capsys.readouterr().out)


def test_a_local_checkpoint_predicts_without_running_its_code(marked_checkpoint, capsys):
    directory, marker = marked_checkpoint
    assert _predict(directory, capsys)["valid"]
    assert not marker.exists(), f"the checkpoint's code ran: {marker.read_text()}"


def test_trust_remote_code_runs_the_checkpoints_code(marked_checkpoint, capsys):
    directory, marker = marked_checkpoint
    assert _predict(directory, capsys, "--trust_remote_code")["valid"]
    assert "pipeline_unimse.py" in marker.read_text().split()  # the checkpoint's pipeline module was imported


def test_modality_contributions_are_printed_on_request(tmp_path, capsys):
    directory = save_checkpoint(tiny_model(), tiny_processor(), tmp_path / "ckpt")
    np.save(tmp_path / "acoustic.npy", np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32))
    result = _predict(directory, capsys, "--acoustic", str(tmp_path / "acoustic.npy"), "--modality_contributions")
    assert list(result["modality_contributions"]) == ["acoustic"]
