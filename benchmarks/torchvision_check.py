"""By-hand check, outside the test suite: torchvision's GoogLeNet, MobileNetV2 and EfficientNets, saved as
.safetensors by PyTorch, load into ninx's models of the same names with no renaming and give the same logits.

    python -m benchmarks.torchvision_check        (needs torch and torchvision; never imported by the tests)

torchvision's compiled ops may not load beside another torch build ("operator torchvision::nms does not
exist"); its model definitions are plain Python, so the meta-kernel registrations are skipped before import.
"""
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

import ninx
from ninx.models import get_model

CASES = (("mobilenet_v2", {}, 224), ("googlenet", {"aux_logits": False, "init_weights": True}, 224),
         ("googlenet", {"aux_logits": True, "init_weights": True}, 224), ("efficientnet_b0", {}, 224),
         ("efficientnet_b3", {}, 96))


def main():
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import safetensors.torch
    import torch
    import torchvision.models as tvm
    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp())
    for name, options, side in CASES:
        theirs = getattr(tvm, name)(**options).eval()
        with torch.no_grad():  # random running statistics, so evaluation exercises them
            for m in theirs.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
        path = folder / f"{name}.safetensors"
        safetensors.torch.save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, str(path))
        ours = get_model(name, num_classes=1000, in_channels=3,
                         **{k: v for k, v in options.items() if k != "init_weights"}).eval()
        same_order = list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict(ninx.load(path))
        x = np.random.default_rng(0).standard_normal((2, 3, side, side)).astype(np.float32)
        with torch.no_grad():
            expected = theirs(torch.from_numpy(x)).numpy()
        with ninx.no_grad():
            got = ours(ninx.tensor(x)).numpy()
        count = sum(p.numel() for p in ours.parameters())
        print(f"{name} {options}: {count:,} parameters (torchvision {sum(p.numel() for p in theirs.parameters()):,}); "
              f"state-dict names in torchvision's order: {same_order}; "
              f"max |difference| / max |logit| = {np.abs(got - expected).max() / np.abs(expected).max():.1e}")


if __name__ == "__main__":
    main()
