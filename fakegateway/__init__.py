"""The fake payment gateway: a real HTTP service with runtime fault injection (see CONTRACT.md)."""
