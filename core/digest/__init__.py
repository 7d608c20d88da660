"""Daily room digests."""
