"""The docs live in the repository: the contract is in docs/, and nothing points outside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", ".git", ".data", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def _project_files() -> list[Path]:
    return [p for p in ROOT.rglob("*") if p.is_file() and not SKIP & set(p.relative_to(ROOT).parts)
            and p.suffix in {".py", ".md", ".yml", ".yaml", ".toml", ".json", ""}]


def test_the_readme_links_the_contract_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/contract.md)" in readme
    assert (ROOT / "docs" / "contract.md").is_file()


def test_nothing_points_outside_the_repository() -> None:
    outside = "../" + "shared"
    offenders = [str(p.relative_to(ROOT)) for p in _project_files()
                 if outside in p.read_text(errors="ignore")]
    assert offenders == []
