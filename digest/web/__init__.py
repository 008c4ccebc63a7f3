"""The web side: preview, archive, subscriptions. Routes live in one table in app.py."""
