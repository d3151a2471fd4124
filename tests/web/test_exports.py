"""Every aggregate table downloads as CSV with the figures the page shows (variation, practices league,
areas, trajectory), on DuckDB and PostgreSQL."""

from __future__ import annotations

import io
import re

import pandas as pd
from fastapi.testclient import TestClient
from webkit import AS_OF, WebWorld, login

Q = f"?as_of={AS_OF.isoformat()}"


def frame(client: TestClient, path: str) -> pd.DataFrame:
    r = client.get(path)
    assert r.status_code == 200, (path, r.text[:300])
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    return pd.read_csv(io.BytesIO(r.content), dtype=str, encoding="utf-8-sig", keep_default_na=False)


def test_variation_league_and_areas_csv_match_their_pages(client: TestClient, world: WebWorld) -> None:
    login(client, "icb1")
    page = client.get(f"/orgs/icb/{world.icb}/variation{Q}").text
    shown = re.findall(r'<a href="/orgs/sub_icb/([^/?"]+)\?', page)
    variation = frame(client, f"/orgs/icb/{world.icb}/variation.csv{Q}")
    assert list(variation["Code"]) == shown and len(shown) >= 1
    assert {"Funnel band", "All-six rate (%)", "Structure", "Codelists"} <= set(variation.columns)

    league_page = client.get(f"/orgs/icb/{world.icb}/practices{Q}").text
    codes = re.findall(r'data-practice="([^"]+)"', league_page)
    league = frame(client, f"/orgs/icb/{world.icb}/practices.csv{Q}")
    assert list(league["Practice code"]) == codes and list(league["Rank"]) == [str(i) for i in range(1, len(codes) + 1)]

    areas = frame(client, f"/orgs/icb/{world.icb}/areas.csv{Q}")
    assert areas["Code"].iloc[0] == world.icb and set(areas["Code"].iloc[1:]) == set(shown)
    assert "BMI rate (%)" in areas.columns


def test_trajectory_csv_matches_the_page(client: TestClient, world: WebWorld) -> None:
    from parity.reports.published import import_published, packaged_series, periods

    db = client.app.state.parity.db
    with db.lock:
        if "2023-24-Q4" not in periods(db):
            import_published(db, packaged_series())
    login(client, "programme1")
    query = "level=icb&org=Y59&baseline=2022-23-Q4&target=0.75&by=2024-03-31&method=to_equal_rate"
    page = client.get(f"/programme/trajectory?{query}").text
    shown = re.findall(r'<tr class="nhsuk-table__row" data-org="([^"]+)">', page)
    assert 'href="/programme/trajectory.csv?' in page
    table = frame(client, f"/programme/trajectory.csv?{query}")
    assert list(table["Code"]) == shown and len(shown) >= 2
    assert set(table["Baseline quarter"]) == {"2022-23-Q4"} and set(table["Target date"]) == {"2024-03-31"}
    # Blank target date: the end of this financial year, ahead of today (PARITY_TODAY 2026-11-22).
    default = client.get("/programme/trajectory?level=region").text
    assert 'value="2027-03-31"' in default


def test_inequalities_csv_has_every_group_of_the_page_and_keeps_suppression(client: TestClient,
                                                                            world: WebWorld) -> None:
    login(client, "icb1")
    page = client.get(f"/orgs/icb/{world.icb}/inequalities{Q}&by=sex").text
    assert f'href="/orgs/icb/{world.icb}/inequalities.csv?measure=phsmi&amp;as_of={AS_OF}&amp;by=sex"' in page
    table = page[page.index('id="inequalities-sex"'):]
    table = table[table.index("<tbody"):table.index("</table>")]
    groups = re.findall(r'<th scope="row" class="nhsuk-table__header">([^<]+)</th>', table) or \
        re.findall(r'<tr class="nhsuk-table__row[^"]*">\s*<t[hd][^>]*>([^<]+)<', table)
    csv = frame(client, f"/orgs/icb/{world.icb}/inequalities.csv{Q}&by=sex")
    mine = csv[csv["org_code"] == world.icb] if "org_code" in csv.columns else csv
    assert set(mine["group"]) == {g.strip() for g in groups if g.strip()}
    assert set(csv["breakdown"]) == {"Sex"}
    every = frame(client, f"/orgs/icb/{world.icb}/inequalities.csv{Q}")
    assert set(every["breakdown"]) > {"Sex"}


def test_published_initiatives_and_assessments_csv(client: TestClient, world: WebWorld) -> None:
    from parity.reports.published import import_published, packaged_series, periods

    db = client.app.state.parity.db
    with db.lock:
        if "2023-24-Q4" not in periods(db):
            import_published(db, packaged_series())
    login(client, "programme1")
    page = client.get(f"/published/region/Y59{Q}").text
    icbs = re.findall(r'href="/published/icb/([^"?]+)', page)
    areas = frame(client, f"/published.csv?level=region&code=Y59&table=areas&as_of={AS_OF}")
    assert set(areas["org_code"]) == set(icbs) and len(icbs) >= 2
    series = frame(client, f"/published.csv?level=region&code=Y59&table=series&as_of={AS_OF}")
    assert "2023-24-Q4" in set(series["period"]) and set(series["org_code"]) == {"Y59"}
    assert client.get(f"/published.csv?level=icb&code={icbs[0]}&table=areas").status_code == 404

    listing = client.get("/programme/initiatives").text
    table = listing[listing.index('id="initiatives"'):]
    shown = len(re.findall(r'<td class="nhsuk-table__cell"><a href="/programme/initiatives\?area=',
                           table[:table.index("</table>")]))
    assert 'href="/programme/initiatives.csv"' in listing
    assert len(frame(client, "/programme/initiatives.csv")) == shown

    assessments = client.get("/assessments").text
    for fw in re.findall(r'href="/assessments/([a-z0-9_-]+)\.csv"', assessments):
        table = frame(client, f"/assessments/{fw}.csv")
        assert {"area_level", "area_code", "assessed_on"} <= set(table.columns)
