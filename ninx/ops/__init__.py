"""Autograd Functions, one per op; each forward and backward calls its inputs' backend."""
