"""`make dev`: runs every part of paysaga on embedded defaults, and the helpers tests reuse."""
