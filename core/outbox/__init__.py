"""Posts that are not the direct reply: written with the request's (or job's) transaction, sent after."""
