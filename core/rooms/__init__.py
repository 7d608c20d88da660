"""Operation rooms: open, live in, close."""
