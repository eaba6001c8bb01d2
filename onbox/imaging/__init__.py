"""The imaging engine: backup, restore, verify, retention and gc over an image store."""
