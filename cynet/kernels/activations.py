"""Placeholder: filled in by the activations kernel work."""
__all__ = []
