"""Pages rendered once per data version (``parity.web.pagecache``; issue 16, target 3): behaviour, not timings.

On a copy of the web world's DuckDB file, with a running app: an organisation page asked for twice is rendered
once and served the same (with each session's own CSRF token); a new load (new data version) or a codelist
release chosen as the default is followed by a fresh rendering with the new figures, without a restart; an
address with anything unknown in it is never kept. ``parity serve --workers`` refuses a DuckDB file.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from webkit import AS_OF, ICB, WebWorld, bearer, login, settings_for

from parity.codes import load_codelist
from parity.codes.release import PCD_COLUMNS, read_release_file
from parity.codes.store import choose_release, import_release
from parity.db import open_database
from parity.db.shared import loading
from parity.engine import results as results_module
from parity.errors import ConfigurationError
from parity.ingest import load_extract
from parity.reports.results import ResultStore
from parity.settings import Settings
from parity.synth import generate
from parity.web import create_app
from parity.web.routes import dashboard

URL = f"/orgs/icb/{ICB}?as_of={AS_OF.isoformat()}"


@pytest.fixture
def copy(duckdb_world: WebWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WebWorld:
    """The web world on its own copy of the DuckDB file (these tests change its data)."""
    src = Path(duckdb_world.url)
    (tmp_path / "db").mkdir()
    dst = tmp_path / "db" / "parity.duckdb"
    shutil.copyfile(src, dst)
    for extra in ("audit.key", "secret.key"):
        if (src.parent / extra).exists():
            shutil.copyfile(src.parent / extra, dst.parent / extra)
    monkeypatch.setattr(results_module, "VERSION_TTL_SECONDS", 0.0)  # read the data version on every request
    return replace(duckdb_world, url=str(dst))


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts organisation pages actually rendered."""
    seen: list[str] = []
    original = dashboard._organisation

    def counting(request: Any, *args: Any) -> Any:
        seen.append(request.url.path)
        return original(request, *args)

    monkeypatch.setattr(dashboard, "_organisation", counting)
    return seen


def _figures(html: str) -> str:
    """The page's figures (its <main>), without the session's token."""
    main = html[html.index("<main"):html.index("</main>")]
    return re.sub(r'name="csrf_token" value="[^"]*"', "", main)


def test_rendered_once_per_data_version_and_again_after_a_load(copy: WebWorld, renders: list[str],
                                                                tmp_path: Path) -> None:
    headers = bearer(copy, "icb1")
    with TestClient(create_app(settings_for(copy))) as client:
        first = client.get(URL, headers=headers)
        second = client.get(URL, headers=headers)
        assert first.status_code == second.status_code == 200
        assert len(renders) == 1  # the second was served as rendered
        assert _figures(first.text) == _figures(second.text)
        assert len(renders) == 1
        client.get(URL + "&unexpected=1", headers=headers)
        client.get(URL + "&unexpected=1", headers=headers)
        assert len(renders) == 3  # an address with anything unknown is rendered each time, never kept

        other = tmp_path / "other-extract"
        generate(other, scale="icb", area=ICB, patients=700, seed=11, as_of=AS_OF, fmt="parquet",
                 structure="2022-23")
        with open_database(copy.url, create=False) as db, loading(db):  # as parity load does
            load_extract(db, other, mode="replace")
            ResultStore(db).refresh(AS_OF, quarters=4, months=3)
        after = client.get(URL, headers=headers)
        assert after.status_code == 200
        assert len(renders) == 4  # the new data version was rendered afresh, without a restart
        assert _figures(after.text) != _figures(first.text)
        client.get(URL, headers=headers)
        assert len(renders) == 4


def test_a_codelist_release_chosen_renders_the_page_again(copy: WebWorld, renders: list[str],
                                                          tmp_path: Path) -> None:
    headers = bearer(copy, "icb1")
    alcohol = load_codelist("ALC_COD").codes
    with TestClient(create_app(settings_for(copy))) as client:
        before = client.get(URL, headers=headers)
        assert client.get(URL, headers=headers).status_code == 200
        assert len(renders) == 1
        # A release whose alcohol cluster has one rarely used code: far fewer alcohol checks are done.
        rows = [("ALC_COD", "ALC_COD description", str(alcohol[-1].code), "t", "999004691000230108",
                 "QOF Mental health")]
        release = tmp_path / "narrow.txt"
        release.write_text("\n".join("\t".join(r) for r in [PCD_COLUMNS, *rows]) + "\n", encoding="utf-8")
        with open_database(copy.url, create=False) as db:
            import_release(db, "narrow", read_release_file(release))
            choose_release(db, "narrow")
        after = client.get(URL, headers=headers)
        assert after.status_code == 200
        assert len(renders) == 2
        assert _figures(after.text) != _figures(before.text)


def test_each_session_gets_its_own_csrf_token(duckdb_world: WebWorld) -> None:
    app = create_app(settings_for(duckdb_world))
    with TestClient(app, follow_redirects=False) as a:
        login(a, "icb1")
        page_a = a.get(URL).text
        token_a = a.cookies.get("parity_session")
        b = TestClient(app, follow_redirects=False)
        login(b, "icb1")
        page_b = b.get(URL).text
        assert token_a != b.cookies.get("parity_session")
        tokens_a = set(re.findall(r'name="csrf_token" value="([^"]+)"', page_a))
        tokens_b = set(re.findall(r'name="csrf_token" value="([^"]+)"', page_b))
        assert tokens_a and tokens_b and tokens_a.isdisjoint(tokens_b)
        assert "parity-csrf-token" not in page_a + page_b


def test_serve_workers_need_postgresql(duckdb_world: WebWorld) -> None:
    from parity.cli import _serve

    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        _serve(Settings(database_url=duckdb_world.url, secret_key="k" * 40), "127.0.0.1", 0, workers=2)


def test_kept_api_answers_equal_fresh_ones_and_open_no_session(world: WebWorld, client_for) -> None:  # noqa: ANN001
    """The measures and trend answers are kept as JSON bytes: the same as rendered, with no session cookie."""
    client: TestClient = client_for(world)
    headers = bearer(world, "programme1")
    for url in (f"/api/v1/measures?level=icb&as_of={AS_OF}", f"/api/v1/organisations/icb/{ICB}/trend?as_of={AS_OF}"):
        first, second = client.get(url, headers=headers), client.get(url, headers=headers)
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()
        assert "set-cookie" not in second.headers
    rows = client.get(f"/api/v1/measures?level=icb&as_of={AS_OF}", headers=headers).json()["rows"]
    assert rows and all("register" in r for r in rows)  # field names as the schema gives them (aliases)
