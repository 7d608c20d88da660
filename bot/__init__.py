"""The Bot Framework side: HTTP app, adapter, middleware, CLI.

The only package that imports botbuilder or aiohttp.
"""
