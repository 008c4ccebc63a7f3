"""Subscribers and consent: the state machine (``consent``), unforgeable links (``tokens``),
CSV import (``importer``) and the flows the CLI and the web call (``service``)."""
