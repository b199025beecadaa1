"""Testing tools for ninx and its users: gradient checking against finite differences."""
from .gradcheck import GradcheckError, gradcheck

__all__ = ["gradcheck", "GradcheckError"]
