"""Placeholder: filled in by the norm kernel work."""
__all__ = []
