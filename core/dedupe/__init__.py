"""Activity ids already acted on, so a re-sent activity has no second effect."""
