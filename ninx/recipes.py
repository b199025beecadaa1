"""What `ninx train --data D` trains when the command line does not say: a model and hyper-parameters per
data set. An option given on the command line replaces the recipe's value for that option only.

- digits (8×8): `nin-digits`, 20 epochs of Adam 3e-3 at batch 32: 98–99% test accuracy in about 15 s.
- mnist, fashion-mnist (28×28): `nin-28`, a NiN sized for 28×28 (see ninx.models.nin), Adam 3e-3 at batch
  128. Fashion-MNIST gets 13 epochs (92.1% test accuracy), which cost about what 14–15 epochs of
  `nin-digits` do (a step of nin-28 costs 1.08–1.15× one of nin-digits); MNIST is easier and gets 3 (not
  measured here: MNIST is not available on the machines ninx is developed on).
- cifar10 (32×32 colour): `nin-32` for 30 epochs of Adam 2e-3 at batch 128 (not measured here either).
Each recipe's measured figures are in README.md's Training section.
"""
KEYS = ("model", "epochs", "batch_size", "optimizer", "lr", "weight_decay")

RECIPES = {
    "digits": {"model": "nin-digits", "epochs": 20, "batch_size": 32, "optimizer": "adam", "lr": 3e-3,
               "weight_decay": 0.0},
    "mnist": {"model": "nin-28", "epochs": 3, "batch_size": 128, "optimizer": "adam", "lr": 3e-3,
              "weight_decay": 0.0},
    "fashion-mnist": {"model": "nin-28", "epochs": 13, "batch_size": 128, "optimizer": "adam", "lr": 3e-3,
                      "weight_decay": 0.0},
    "cifar10": {"model": "nin-32", "epochs": 30, "batch_size": 128, "optimizer": "adam", "lr": 2e-3,
                "weight_decay": 0.0},
}


def describe(data, config, given):
    """One line saying which recipe values `config` took for `data`, and which options the user gave instead."""
    chosen = " ".join(f"--{key.replace('_', '-')} {config[key]}" for key in KEYS if key not in given)
    replaced = " ".join(f"--{key.replace('_', '-')}" for key in KEYS if key in given)
    return (f"{data} recipe: {chosen or '(every value given on the command line)'}"
            + (f" (given: {replaced})" if replaced else ""))
