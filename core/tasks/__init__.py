"""Tasks inside an operation room."""
