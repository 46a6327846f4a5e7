"""Predicates: network (being written)."""
