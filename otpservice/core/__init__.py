"""The domain: verifications, the checks before a send, receipts, opt-outs, TOTP. No Flask, Redis or HTTP client
here: collaborators (stores, senders, metrics) arrive from wiring.py."""
