"""Make the brats_unet package importable in a rule's own environment.

With `--software-deployment-method conda` a job runs in workflow/envs/brats-unet.yaml,
which holds the dependencies but not this repository's package; take it from src/.
"""
import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("brats_unet") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
