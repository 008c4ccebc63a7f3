"""Sending: per-recipient bytes (message), DKIM (dkim), the SMTP pool (smtp) and its in-memory
twin (memory), pacing (ratelimit), and the send loop over the delivery ledger (engine)."""
