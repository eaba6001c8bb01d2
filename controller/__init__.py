"""The operator side: `testboxctl` loads the desired state, observes the shares, plans, applies."""
