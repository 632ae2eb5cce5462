"""The repository documents its own API: docs/api.md names every setting the service reads and
every `detail` it answers with, and neither it nor the README sends a reader outside the
repository."""

import re
from pathlib import Path

import pytest

from entrypoints.problems import PROBLEMS

REPOSITORY = Path(__file__).resolve().parents[2]
API_REFERENCE = REPOSITORY / "docs" / "api.md"
SETTINGS_SOURCE = REPOSITORY / "entrypoints" / "settings.py"


def _settings_read() -> set[str]:
    # Every variable name the settings module looks up, quoted as it does.
    return set(re.findall(r'"((?:[A-Z]+_)+[A-Z]+)"', SETTINGS_SOURCE.read_text()))


def test_every_setting_is_in_the_api_reference() -> None:
    reference = API_REFERENCE.read_text()
    settings = _settings_read()
    assert "DATABASE_URL_UNPOOLED" in settings  # the search finds what it should
    assert {name for name in settings if f"`{name}`" not in reference} == set()


@pytest.mark.parametrize("detail", sorted({detail for _, detail in PROBLEMS.values()}))
def test_every_detail_is_in_the_api_reference(detail: str) -> None:
    assert f"`{detail}`" in API_REFERENCE.read_text()


@pytest.mark.parametrize("document", ["README.md", "docs/api.md"])
def test_the_documentation_points_nowhere_outside_the_repository(document: str) -> None:
    text = (REPOSITORY / document).read_text()
    assert "../shared" not in text
    assert "CONTRACT.md" not in text
    for target in re.findall(r"\]\(([^)#]+)[^)]*\)", text):
        if not target.startswith(("http://", "https://")):
            assert (REPOSITORY / Path(document).parent / target).exists(), target
