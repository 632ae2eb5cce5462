"""The rules of the todo domain: task fields, partial updates, ownership, and passwords."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.errors import FieldError, TaskAccessDenied, ValidationFailed
from domain.tasks import (
    MAX_DESCRIPTION_LENGTH,
    MAX_TITLE_LENGTH,
    UNCHANGED,
    Task,
    TaskChanges,
    apply_changes,
    new_task,
    next_version,
    validate_changes,
)
from domain.users import password_problems

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OWNER = UUID("11111111-1111-4111-8111-111111111111")
STRANGER = UUID("22222222-2222-4222-8222-222222222222")
TICK = timedelta(microseconds=1)

# Characters that str.strip() removes, from ASCII and beyond.
WHITESPACE = " \t\n\r\x0b\x0c\u00a0\u2003\u3000"


def make_task(
    *,
    title: str = "Buy milk",
    description: str | None = "two litres",
    completed: bool = False,
    now: datetime = NOW,
) -> Task:
    return new_task(
        task_id=uuid4(),
        owner_id=OWNER,
        title=title,
        description=description,
        completed=completed,
        now=now,
    )


def fields_of(error: ValidationFailed) -> list[str]:
    return [e.field for e in error.errors]


# --- new_task: the title --------------------------------------------------------------------


def test_new_task_keeps_every_field_and_stamps_both_times_with_now() -> None:
    task_id = uuid4()
    task = new_task(
        task_id=task_id,
        owner_id=OWNER,
        title="Buy milk",
        description="two litres",
        completed=True,
        now=NOW,
    )
    assert task == Task(
        id=task_id,
        owner_id=OWNER,
        title="Buy milk",
        description="two litres",
        completed=True,
        created_at=NOW,
        updated_at=NOW,
        completed_at=NOW,  # created completed: completed as it was created
    )


def test_title_is_stored_trimmed() -> None:
    assert make_task(title="  \t Buy milk \n ").title == "Buy milk"


def test_inner_whitespace_of_the_title_is_kept() -> None:
    assert make_task(title=" a  b ").title == "a  b"


def test_title_of_200_characters_after_trimming_is_accepted() -> None:
    title = "x" * MAX_TITLE_LENGTH
    assert MAX_TITLE_LENGTH == 200
    assert make_task(title=f"   {title}   ").title == title


def test_title_of_201_characters_after_trimming_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_task(title="x" * (MAX_TITLE_LENGTH + 1))
    assert fields_of(caught.value) == ["title"]


def test_surrounding_whitespace_does_not_count_towards_the_title_limit() -> None:
    # 200 characters of title plus 50 of padding: the raw string is long, the title is not.
    assert len(make_task(title=" " * 25 + "y" * 200 + " " * 25).title) == 200


def test_single_character_title_is_accepted() -> None:
    assert make_task(title="x").title == "x"


@pytest.mark.parametrize("title", ["", " ", "   \t\n  ", WHITESPACE])
def test_blank_title_is_rejected(title: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_task(title=title)
    assert caught.value.errors == [FieldError("title", "Title must not be blank")]


@pytest.mark.parametrize("title", ["\x00", "Buy\x00milk", "Buy milk\x00", " \x00 "])
def test_nul_in_the_title_is_rejected(title: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_task(title=title)
    assert fields_of(caught.value) == ["title"]
    assert "U+0000" in caught.value.errors[0].message


# --- new_task: the description --------------------------------------------------------------


def test_description_may_be_none() -> None:
    assert make_task(description=None).description is None


def test_description_of_10000_characters_is_accepted() -> None:
    description = "d" * MAX_DESCRIPTION_LENGTH
    assert MAX_DESCRIPTION_LENGTH == 10_000
    assert make_task(description=description).description == description


def test_description_of_10001_characters_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_task(description="d" * (MAX_DESCRIPTION_LENGTH + 1))
    assert fields_of(caught.value) == ["description"]


def test_description_is_stored_as_given_not_trimmed() -> None:
    assert make_task(description="  indented\n").description == "  indented\n"


@pytest.mark.parametrize("description", ["\x00", "line\x00break", "d" * 9_999 + "\x00"])
def test_nul_in_the_description_is_rejected(description: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_task(description=description)
    assert fields_of(caught.value) == ["description"]


def test_every_broken_rule_is_reported_not_only_the_first() -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_task(title="  ", description="d" * (MAX_DESCRIPTION_LENGTH + 1))
    assert fields_of(caught.value) == ["title", "description"]
    assert "title" in str(caught.value)
    assert "description" in str(caught.value)


def test_validation_failed_single_carries_one_field_error() -> None:
    error = ValidationFailed.single("limit", "Must be between 1 and 1000")
    assert error.errors == [FieldError("limit", "Must be between 1 and 1000")]
    assert str(error) == "limit: Must be between 1 and 1000"


# --- hypothesis properties of the field rules -----------------------------------------------

padding = st.text(alphabet=WHITESPACE, max_size=4)
raw_titles = st.one_of(
    st.text(max_size=30),
    st.text(min_size=195, max_size=205),
    st.integers(min_value=195, max_value=205).map(lambda n: "t" * n),
    st.text(alphabet=WHITESPACE + "\x00", max_size=6),
)
titles = st.builds(lambda before, core, after: before + core + after, padding, raw_titles, padding)


def title_is_valid(raw: str) -> bool:
    return "\x00" not in raw and 1 <= len(raw.strip()) <= MAX_TITLE_LENGTH


@given(titles)
def test_property_a_title_is_accepted_exactly_when_its_trimmed_form_is_valid(raw: str) -> None:
    if title_is_valid(raw):
        assert make_task(title=raw).title == raw.strip()
    else:
        with pytest.raises(ValidationFailed) as caught:
            make_task(title=raw)
        assert fields_of(caught.value) == ["title"]


@given(titles)
def test_property_an_update_applies_the_same_title_rule_as_creation(raw: str) -> None:
    if title_is_valid(raw):
        assert validate_changes(TaskChanges(title=raw)).title == raw.strip()
    else:
        with pytest.raises(ValidationFailed) as caught:
            validate_changes(TaskChanges(title=raw))
        assert fields_of(caught.value) == ["title"]


descriptions = st.one_of(
    st.none(),
    st.text(max_size=50),
    st.integers(min_value=9_995, max_value=10_005).map(lambda n: "d" * n),
    st.builds(
        lambda n, at: ("d" * n)[:at] + "\x00" + ("d" * n)[at:],
        st.integers(min_value=0, max_value=20),
        st.integers(min_value=0, max_value=20),
    ),
)


@given(descriptions)
def test_property_a_description_is_accepted_exactly_when_none_or_short_and_nul_free(
    description: str | None,
) -> None:
    valid = description is None or (
        "\x00" not in description and len(description) <= MAX_DESCRIPTION_LENGTH
    )
    if valid:
        assert make_task(description=description).description == description
        assert validate_changes(TaskChanges(description=description)).description == description
    else:
        with pytest.raises(ValidationFailed) as caught:
            make_task(description=description)
        assert fields_of(caught.value) == ["description"]
        with pytest.raises(ValidationFailed):
            validate_changes(TaskChanges(description=description))


# --- partial updates --------------------------------------------------------------------------


def test_validate_changes_leaves_unchanged_fields_unchanged() -> None:
    assert validate_changes(TaskChanges()) == TaskChanges(
        title=UNCHANGED, description=UNCHANGED, completed=UNCHANGED
    )


def test_validate_changes_trims_the_title_and_keeps_the_rest() -> None:
    changes = validate_changes(TaskChanges(title="  New  ", description=None, completed=True))
    assert changes == TaskChanges(title="New", description=None, completed=True)


def test_validate_changes_reports_title_and_description_together() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_changes(TaskChanges(title="\t", description="\x00"))
    assert fields_of(caught.value) == ["title", "description"]


def test_update_of_the_title_alone_keeps_description_and_completed() -> None:
    task = make_task(title="Old", description="keep me", completed=True)
    updated = apply_changes(task, validate_changes(TaskChanges(title=" New ")), NOW)
    assert (updated.title, updated.description, updated.completed) == ("New", "keep me", True)


def test_update_of_completed_alone_keeps_title_and_description() -> None:
    task = make_task(title="Old", description="keep me", completed=False)
    updated = apply_changes(task, TaskChanges(completed=True), NOW)
    assert (updated.title, updated.description, updated.completed) == ("Old", "keep me", True)


def test_update_of_the_description_alone_keeps_title_and_completed() -> None:
    task = make_task(title="Old", description="before", completed=True)
    updated = apply_changes(task, TaskChanges(description="after"), NOW)
    assert (updated.title, updated.description, updated.completed) == ("Old", "after", True)


def test_none_clears_the_description_while_unchanged_keeps_it() -> None:
    task = make_task(description="something")
    assert apply_changes(task, TaskChanges(description=None), NOW).description is None
    assert apply_changes(task, TaskChanges(), NOW).description == "something"


def test_update_can_mark_a_completed_task_as_open_again() -> None:
    task = make_task(completed=True)
    assert apply_changes(task, TaskChanges(completed=False), NOW).completed is False


def test_update_never_changes_id_owner_or_created_at() -> None:
    task = make_task()
    updated = apply_changes(task, TaskChanges(title="x", description=None, completed=True), NOW)
    assert (updated.id, updated.owner_id, updated.created_at) == (
        task.id,
        task.owner_id,
        task.created_at,
    )


def test_applying_changes_leaves_the_version_to_the_store() -> None:
    task = make_task()
    assert apply_changes(task, TaskChanges(completed=True), NOW).updated_at == task.updated_at


def test_next_version_takes_the_clock_when_it_moved_forward() -> None:
    later = NOW + timedelta(minutes=5)
    assert next_version(NOW, later) == later


def test_next_version_moves_forward_even_when_the_clock_stands_still() -> None:
    assert next_version(NOW, NOW) == NOW + TICK


def test_next_version_moves_forward_even_when_the_clock_steps_back() -> None:
    assert next_version(NOW, NOW - timedelta(hours=1)) == NOW + TICK


def test_next_version_keeps_moving_over_repeated_changes_at_one_instant() -> None:
    stamps = [NOW]
    for _ in range(5):
        stamps.append(next_version(stamps[-1], NOW))
    assert stamps == sorted(set(stamps))
    assert len(stamps) == 6


@given(
    steps=st.lists(st.integers(min_value=-(10**9), max_value=10**9), min_size=1, max_size=10),
)
def test_property_next_version_strictly_increases_and_never_lags_the_clock(
    steps: list[int],
) -> None:
    version = NOW
    for offset_us in steps:
        now = NOW + timedelta(microseconds=offset_us)
        moved = next_version(version, now)
        assert moved > version
        assert moved >= now
        version = moved


# --- ownership ------------------------------------------------------------------------------


def test_owner_may_use_their_task() -> None:
    make_task().ensure_owned_by(OWNER)  # no exception is the behaviour under test


def test_another_user_is_denied_the_task() -> None:
    with pytest.raises(TaskAccessDenied):
        make_task().ensure_owned_by(STRANGER)


@given(st.uuids())
def test_property_only_the_owner_passes_the_ownership_rule(someone: UUID) -> None:
    assume(someone != OWNER)
    with pytest.raises(TaskAccessDenied):
        make_task().ensure_owned_by(someone)


# --- passwords ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "12345678",
        "x" * 128,
        "\u043f\u0430\u0440\u043e\u043b\u044c12",
        "密码密码密码密码",
        "🔑" * 8,
        " " * 8,
    ],
)
def test_passwords_of_8_to_128_characters_in_any_script_are_accepted(password: str) -> None:
    assert password_problems(password) == []


@pytest.mark.parametrize("password", ["", "1234567", "x" * 129, "🔑" * 7])
def test_passwords_outside_8_to_128_characters_are_rejected(password: str) -> None:
    assert [problem.field for problem in password_problems(password)] == ["password"]


@pytest.mark.parametrize("password", ["\x00" * 8, "pass\x00word", "password\x00"])
def test_nul_in_the_password_is_rejected(password: str) -> None:
    problems = password_problems(password)
    assert [problem.field for problem in problems] == ["password"]
    assert "U+0000" in problems[0].message


def test_a_short_password_with_nul_reports_both_problems() -> None:
    assert [e.field for e in password_problems("a\x00")] == ["password", "password"]


def test_password_problems_name_the_field_they_are_asked_about() -> None:
    assert [e.field for e in password_problems("short", field="new_password")] == ["new_password"]


@given(st.one_of(st.text(max_size=20), st.text(min_size=120, max_size=135)))
def test_property_a_password_is_accepted_exactly_when_8_to_128_characters_without_nul(
    password: str,
) -> None:
    valid = 8 <= len(password) <= 128 and "\x00" not in password
    assert (password_problems(password) == []) is valid
