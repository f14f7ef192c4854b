"""Shared builders for the UniMSE tests: tiny configs with random weights and the real T5 vocabulary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from unimse_hf import UniMSEConfig, UniMSEForConditionalGeneration, UniMSEProcessor

REPO_ROOT = Path(__file__).resolve().parent.parent
T5_VOCAB_DIR = REPO_ROOT / "data" / "t5"
SHARED_OFFICIAL_VECTORS_DIR = REPO_ROOT.parent / "shared" / "data" / "official_vectors"
SHIPPED_OFFICIAL_VECTORS_DIR = REPO_ROOT / "tests" / "data" / "official_tiny"
"""The `tiny` case shipped in the repository (see its README.md): used when the shared folder is absent."""
OFFICIAL_VECTORS_DIR = SHARED_OFFICIAL_VECTORS_DIR if SHARED_OFFICIAL_VECTORS_DIR.is_dir() else SHIPPED_OFFICIAL_VECTORS_DIR

TINY = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, acoustic_dim=8, visual_dim=6,
            modality_hidden=16, modality_out=16, pmf_bottleneck=16, cl_proj_dim=8)


def tiny_config(**overrides) -> UniMSEConfig:
    """A 2+2-block UniMSE config with the full T5 vocabulary size (so the real tokenizer fits)."""
    return UniMSEConfig(**{**TINY, **overrides})


def tiny_model(seed: int = 0, **overrides) -> UniMSEForConditionalGeneration:
    """A randomly initialised tiny UniMSE in eval mode."""
    torch.manual_seed(seed)
    return UniMSEForConditionalGeneration(tiny_config(**overrides)).eval()


_PROCESSOR: UniMSEProcessor | None = None


def tiny_processor() -> UniMSEProcessor:
    """The real T5 tokenizer plus a feature extractor matching `TINY` (100 Hz acoustic, 30 Hz visual)."""
    global _PROCESSOR
    if _PROCESSOR is None:
        _PROCESSOR = UniMSEProcessor.from_tokenizer_dir(
            T5_VOCAB_DIR, acoustic_dim=TINY["acoustic_dim"], visual_dim=TINY["visual_dim"],
            acoustic_frame_rate=100.0, visual_frame_rate=30.0,
        )
    return _PROCESSOR


def random_frames(rng: np.random.Generator, lengths: list[int], dim: int) -> list[np.ndarray]:
    """Random float32 frame sequences of the given lengths."""
    return [rng.standard_normal((n, dim)).astype(np.float32) for n in lengths]


def run_without_package(code: str, cwd: Path, env_extra: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run Python code in a fresh process in which `unimse_hf` cannot be imported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(env_extra or {})
    guard = (
        "import sys\n"
        "class _BlockUniMSE:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'unimse_hf' or name.startswith('unimse_hf.'):\n"
        "            raise ImportError('unimse_hf is blocked in this process')\n"
        "sys.meta_path.insert(0, _BlockUniMSE())\n"
        "try:\n    import unimse_hf\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('unimse_hf importable')\n"
    )
    return subprocess.run([sys.executable, "-c", guard + code], cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=timeout)
