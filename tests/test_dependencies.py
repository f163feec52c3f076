"""What importing emovid costs a user: one Lightning, no TensorBoard, and a notebook's matplotlib left alone.

Run in a fresh interpreter, since this test session has long imported everything.
"""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import sys
from pathlib import Path

import matplotlib
import numpy as np

import emovid.annotate, emovid.cli, emovid.evaluate, emovid.predict, emovid.training  # noqa: E401
from emovid.plots import plot_confusion_matrix, plot_training_curves

out = Path(sys.argv[1])
plot_confusion_matrix(np.array([[3, 1], [0, 2]]), ["a", "b"], out / "matrix.png")
plot_training_curves({"train/loss_epoch": [(0, 1.0), (1, 0.5)], "val/acc": [(0, 0.2), (1, 0.4)]}, out / "curves.png")
pyplot = sys.modules.get("matplotlib.pyplot")  # torchmetrics imports it, emovid never draws with it
print(matplotlib.get_backend(), pyplot.get_fignums() if pyplot else [],
      sorted({m.split(".")[0] for m in sys.modules} & {"lightning", "tensorboard", "sklearn"}))
"""


def test_imports_and_plots_leave_the_user_s_environment_alone(tmp_path) -> None:
    env = {**os.environ, "MPLBACKEND": "svg"}  # a backend that is not Agg, as a notebook's would not be
    result = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=300, check=True)
    assert result.stdout.split("\n")[-2] == "svg [] []"
    assert (tmp_path / "matrix.png").read_bytes()[:4] == (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
