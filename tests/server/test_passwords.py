"""Password hashing with argon2id, rehashing on changed parameters, and the password rules."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from server.passwords import (
    GENERATED_PASSWORD_LENGTH,
    generate_password,
    hash_password,
    password_problem,
    verify_password,
)


def test_hash_is_argon2id_phc() -> None:
    hashed = hash_password("correct horse battery")

    assert hashed.startswith("$argon2id$")
    assert "correct horse battery" not in hashed


def test_verify_correct_and_wrong() -> None:
    hashed = hash_password("correct horse battery")

    assert verify_password(hashed, "correct horse battery").valid
    assert not verify_password(hashed, "correct horse batterY").valid
    assert verify_password(hashed, "correct horse battery").new_hash is None


def test_verify_garbage_hash_is_invalid() -> None:
    assert not verify_password("not-a-hash", "anything at all").valid


def test_verify_old_parameters_rehashes() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    old_hash = weak.hash("correct horse battery")

    verification = verify_password(old_hash, "correct horse battery")

    assert verification.valid
    assert verification.new_hash is not None
    assert verification.new_hash != old_hash
    assert verify_password(verification.new_hash, "correct horse battery").new_hash is None


def test_wrong_password_never_rehashes() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)

    verification = verify_password(weak.hash("correct horse battery"), "wrong password!")

    assert not verification.valid
    assert verification.new_hash is None


@pytest.mark.parametrize(
    ("password", "username", "problem"),
    [
        ("short", "anna", "password_too_short"),
        ("elevenchars", "anna", "password_too_short"),
        ("anna.kowalska", "anna.kowalska", "password_is_username"),
        ("Anna.Kowalska", "anna.kowalska", "password_is_username"),
        ("twelve chars", "anna", None),
        (" " * 12, "anna", "password_only_whitespace"),
        ("\t \n" * 4, "anna", "password_only_whitespace"),
        ("annaannaanna", "anna", "password_too_few_distinct"),
        ("ababababcdcd", "xy", "password_too_few_distinct"),
        ("abcdefabcdef", "xy", None),
        ("my Anna password", "anna", "password_contains_username"),
        ("ANNA.KOWALSKA 2024", "anna.kowalska", "password_contains_username"),
        ("good password ab", "ab", None),
        ("a long password!", "ann", None),
    ],
)
def test_password_rules(password: str, username: str, problem: str | None) -> None:
    assert password_problem(password, username) == problem


def test_generated_passwords_differ() -> None:
    first, second = generate_password(), generate_password()

    assert len(first) == GENERATED_PASSWORD_LENGTH
    assert first != second
    assert password_problem(first, "anna") is None


def test_generated_password_avoids_username() -> None:
    for _ in range(50):
        password = generate_password("abc")

        assert password_problem(password, "abc") is None
