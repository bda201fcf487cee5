"""Each saga's contract, one file per saga: the dataclasses its workflow, its activities, the
database layer and the API pass between them. Below everything but domain: no imports upward."""
