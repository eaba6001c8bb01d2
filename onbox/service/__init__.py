"""`testbox-maintenance`: the on-box service that carries out one request and reports it."""
