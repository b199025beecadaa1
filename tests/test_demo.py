"""The guided demo runs end to end and its 1×1 check finds the conv and per-pixel linear layer equal."""
import re

from ninx import demo


def test_demo_runs_and_the_pointwise_identity_holds(capsys, device):
    demo.main(["--batch", "2", "--size", "8", "--channels", "6", "--device", device])
    out = capsys.readouterr().out
    assert "0.2" in out and "Conv2d" in out and "loss" in out  # the summary table names the 1×1 layer 0.2
    gap = float(re.search(r"max \|difference\| = ([0-9.e+-]+)", out).group(1))
    assert gap < 1e-5
