"""Which build the code is, and what the replay gate's verdict means."""

from __future__ import annotations

from pathlib import Path

from temporalio.common import VersioningBehavior

from deploy.gate import Failure, Report, behaviors
from release.build import CODE, build_id, code_digest
from settings import Settings
from worker.main import WORKFLOWS


def tree(root: Path, text: str) -> Path:
    for package in CODE:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "workflows" / "payment.py").write_text(text)
    return root


def test_the_same_code_is_the_same_build_and_any_change_is_another(tmp_path: Path) -> None:
    one = code_digest(tree(tmp_path / "a", "x = 1\n"))
    assert code_digest(tree(tmp_path / "b", "x = 1\n")) == one
    assert code_digest(tree(tmp_path / "c", "x = 2\n")) != one


def test_a_pipelines_build_id_wins_over_the_digest() -> None:
    assert build_id(Settings(worker_build_id="2026.11.30-7")) == "2026.11.30-7"
    assert build_id(Settings()).endswith(f"-{code_digest()}")


def test_every_saga_declares_how_it_moves_between_builds() -> None:
    declared = behaviors(WORKFLOWS)
    assert VersioningBehavior.UNSPECIFIED not in declared.values()
    auto = {k for k, v in declared.items() if v == VersioningBehavior.AUTO_UPGRADE}
    assert auto == {"Payment", "WebhookDeliveryWorkflow", "Dispute"}  # the ones that wait for days


def test_the_gate_refuses_for_auto_upgrading_sagas_and_unknown_open_runs_only() -> None:
    pinned = Failure("TopUp", "tup_1", "r1", True, "nondeterminism")
    moving = Failure("Payment", "pay_1", "r2", False, "nondeterminism")
    assert not Report("b", failures=[pinned]).refused
    assert Report("b", failures=[pinned, moving]).refused
    assert Report("b", unknown_open={"PaymentWorkflow": 2}).refused
    said = "\n".join(Report("b", failures=[moving]).lines())
    assert "pay_1" in said
    assert "verdict: refused" in said
