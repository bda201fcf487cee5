"""`make chaos`: payments under crashes, restarts and gateway faults, then the invariants."""
