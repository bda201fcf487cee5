"""Saga v1, in its own wing: the frozen workflow (type `PaymentWorkflow`), its own steps and its
frozen contract. Only payments started before saga v2 still run it. The worker registers the wing
in one line (`legacy.wing.register`); deleting this package and that line retires it once the drain
check in the README says no v1 run is left.
"""
