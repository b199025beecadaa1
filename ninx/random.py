"""ninx's one random-number generator (dropout masks, initialisation, shuffling), seeded by `manual_seed`."""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Reseed the generator, so runs with the same seed draw the same numbers."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    return _generator


def get_state():
    """The generator's state (a dict), for checkpoints."""
    return _generator.bit_generator.state


def set_state(state):
    _generator.bit_generator.state = state
