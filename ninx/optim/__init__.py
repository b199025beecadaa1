"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules (`ninx.optim.lr_scheduler`)."""
from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
