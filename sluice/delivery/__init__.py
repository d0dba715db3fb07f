"""Webhook delivery, the callback step, the SSRF guard and the `sluice forward` tunnel (DESIGN.md §5)."""
