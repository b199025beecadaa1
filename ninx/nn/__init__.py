"""Neural-network building blocks; `ninx.nn.functional` holds the stateless ops."""
from . import functional  # noqa: F401
