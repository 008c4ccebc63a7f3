"""Ingestion: fetch sources, clean what arrives into articles."""
