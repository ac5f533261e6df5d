"""Shared test configuration: make ``tests/reference.py`` importable as ``reference``.

Without a GPU, Triton's interpreter runs the fused GPU kernel on CPU tensors, so that its
tests run everywhere; Triton reads the switch when first imported, hence here.
"""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
