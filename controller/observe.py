"""Reads the shares into the observed model (placeholder until the controller lands)."""
