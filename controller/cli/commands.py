"""Imports every command module so its commands register on the app (one line per module)."""
