"""Temporal workflows: the payment saga and its contracts with activities and callers."""
