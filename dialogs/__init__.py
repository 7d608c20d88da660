"""Features: the commands each offers and the cards it renders."""
