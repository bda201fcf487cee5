"""`make bench`: figures, never pass/fail."""
