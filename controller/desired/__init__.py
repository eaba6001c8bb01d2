"""Loading the desired-state YAML into `schema.desired.DesiredState`, with file:line errors."""
