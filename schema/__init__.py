"""The contract between the controller and the on-box service.

Pydantic models only: the desired-state file, the request the controller arms for a box, the
result the on-box service records, image records, and the pure naming rules of the two shares.
Nothing in this package touches a file, a socket or a clock.
"""
