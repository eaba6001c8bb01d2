"""Executes a plan (placeholder until the controller lands)."""
