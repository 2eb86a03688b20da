"""Placeholder: filled in by the rnn kernel work."""
__all__ = []
