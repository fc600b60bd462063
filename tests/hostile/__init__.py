"""Hostile submissions run through the real sandbox, each with its expected verdict (see SECURITY.md)."""
