"""Synthetic NHS numbers: the 9000000000-9999999999 test range, valid modulus-11 check digit."""

from __future__ import annotations

import numpy as np

_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)  # weights of the first nine digits


def check_digits(stems: np.ndarray) -> np.ndarray:
    """Modulus-11 check digit of 9-digit stems; 10 where the stem has no valid check digit."""
    stems = np.asarray(stems, dtype=np.int64)
    digits = (stems[:, None] // (10 ** np.arange(8, -1, -1, dtype=np.int64))) % 10
    check = 11 - (digits * _WEIGHTS).sum(axis=1) % 11
    return np.where(check == 11, 0, check)


def is_valid(numbers: np.ndarray) -> np.ndarray:
    """True where a 10-digit number has a correct modulus-11 check digit."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return check_digits(numbers // 10) == numbers % 10


def nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct valid NHS numbers in the test range, in random order (int64)."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    # About 1 stem in 11 has no valid check digit: draw enough distinct stems to cover that.
    want = int(n * 1.12) + 64
    stems = 900_000_000 + rng.choice(100_000_000, size=want, replace=False, shuffle=True).astype(np.int64)
    check = check_digits(stems)
    ok = check != 10
    numbers = stems[ok][:n] * 10 + check[ok][:n]
    if len(numbers) < n:  # vanishingly unlikely; top up deterministically
        return nhs_numbers(rng, n)
    return numbers
