"""Outgoing webhooks per the Standard Webhooks spec: an outbox written with each change (outbox.py), signing
(signing.py) and at-least-once delivery with retries through the SSRF guard (delivery.py).

Kept import-light: services of the other apps import `api.webhooks.outbox` inside their transactions.
"""
