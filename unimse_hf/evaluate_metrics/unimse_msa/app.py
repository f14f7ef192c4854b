"""Gradio widget of the unimse_msa evaluation module when this folder is a Hugging Face Space."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load(str(Path(__file__).with_name("unimse_msa.py")))
launch_gradio_widget(module)
