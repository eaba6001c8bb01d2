"""Operator tools beside the reconcile loop: the sample lab, `pxe-conf`, the maintenance root."""
