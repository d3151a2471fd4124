from datetime import date

import pytest

from parity.dates import latest_quarter_end, parse_date, quarter_ends
from parity.errors import ConfigurationError


def test_latest_quarter_end():
    assert latest_quarter_end(date(2026, 11, 22)) == date(2026, 9, 30)
    assert latest_quarter_end(date(2026, 10, 1)) == date(2026, 9, 30)
    assert latest_quarter_end(date(2026, 9, 30)) == date(2026, 6, 30)
    assert latest_quarter_end(date(2026, 2, 1)) == date(2025, 12, 31)


def test_quarter_ends():
    assert quarter_ends(date(2024, 3, 31), 4) == [date(2023, 6, 30), date(2023, 9, 30), date(2023, 12, 31),
                                                  date(2024, 3, 31)]
    assert len(quarter_ends(date(2026, 9, 30), 8)) == 8


def test_parse_date_errors_name_the_option():
    with pytest.raises(ConfigurationError, match="--as-of"):
        parse_date("31/03/2024", "--as-of")


def test_default_reporting_date_is_decided_once_and_follows_the_pinned_today(monkeypatch):
    from parity import dates
    from parity.clikit import today as cli_today
    from parity.synth.generator import default_as_of as synth_default

    monkeypatch.setenv("PARITY_TODAY", "2024-05-15")
    assert dates.today() == cli_today() == date(2024, 5, 15)
    assert dates.default_as_of() == synth_default() == date(2024, 3, 31)
    assert dates.as_of_or_default(None) == date(2024, 3, 31)
    assert dates.as_of_or_default("2023-12-31") == date(2023, 12, 31)
    # A quarter end is not yet a finished quarter on that very day.
    assert dates.default_as_of(date(2024, 6, 30)) == date(2024, 3, 31)
    assert dates.default_as_of(date(2024, 7, 1)) == date(2024, 6, 30)
    # Settings' pinned date wins over the environment (the web app reads it once).
    assert dates.today(date(2025, 1, 2)) == date(2025, 1, 2)
