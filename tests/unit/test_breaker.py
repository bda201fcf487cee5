from gateway.breaker import STATE, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state == "closed"
    assert breaker.allow()
    breaker.failed()
    assert breaker.state == "open"
    assert STATE.labels("primary")._value.get() == 2
    assert not breaker.allow()
    clock.now = 4
    assert breaker.retry_in() == 6


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.state == "closed"


def test_half_open_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=5, clock=clock)
    breaker.failed()
    clock.now = 5
    assert breaker.allow()  # the trial
    assert breaker.state == "half_open"
    assert not breaker.allow()  # only one at a time
    breaker.failed()
    assert breaker.state == "open"
    clock.now = 10
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed"
    assert STATE.labels("primary")._value.get() == 0
    assert breaker.allow()
