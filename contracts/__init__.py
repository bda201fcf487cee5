"""What the sagas exchange: `saga.py` what every saga shares, then one file per saga, the
dataclasses its workflow, its activities, the database layer and the API pass between them. On
the ground floor: it imports nothing of paysaga's."""
