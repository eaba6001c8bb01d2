"""The controller's side effects: observe the shares, apply a plan, hold the share lock.

Every share access goes through `onbox.shareio` (no symlink followed, regular files only,
bounded reads, atomic writes). This layer decides nothing: what to change comes from the core.
"""
