"""Draw the docs' training figures from a real run: ResNet-20 trained on scikit-learn's digits
with the digits preset (12 epochs, seed 0; about a minute on 2 CPU cores), its curves.png as
docs/digits-curves.png, and the confusion matrix of its best epoch's weights on the test split
as docs/digits-confusion.png.

    python docs/digits_figures.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/cifar/resnet20.res"


def resdsl(*args: str) -> None:
    """`resdsl ARGS` as a user runs it, from the repository's root; stop where it fails."""
    subprocess.run([sys.executable, "-m", "resdsl", *args], cwd=ROOT, check=True)


with tempfile.TemporaryDirectory() as folder:
    run = Path(folder) / "resnet20"
    resdsl("train", SPEC, "--data", "digits", "--seed", "0", "--out", str(run))
    shutil.copyfile(run / "curves.png", ROOT / "docs" / "digits-curves.png")
    confusion = str(ROOT / "docs" / "digits-confusion.png")
    resdsl(
        "eval",
        SPEC,
        "--weights",
        str(run / "best.pt"),
        "--data",
        "digits",
        "--confusion",
        confusion,
    )
