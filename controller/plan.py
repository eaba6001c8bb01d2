"""Pure planner (placeholder until the controller lands)."""
