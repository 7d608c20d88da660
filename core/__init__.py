"""The domain and its storage. No Bot Framework and no aiohttp in here."""
