"""Finding 9 (issue 12): an ICB user records assessments only for its own ICB, like initiatives."""

from __future__ import annotations

from parity.access import audit

from .conftest import csrf, sign_in


def _post(web, site, level: str, code: str):
    token = csrf(web, f"/assessments/eds/{level}/{code}")
    form = {"csrf_token": token, "assessed_on": "2026-03-31", "score-1A": "2", "score-1B": "1", "score-1C": "3",
            "score-1D": "0"}
    return web.post(f"/assessments/eds/{level}/{code}", data=form)


def test_icb_user_may_not_write_assessments_for_another_area(site, web):
    sign_in(web, "icb1")
    elsewhere = site.db.execute("SELECT min(practice_code) FROM practices WHERE icb_code = ?", [site.other_icb])[0][0]
    for level, code in (("icb", site.other_icb), ("region", site.region), ("practice", elsewhere),
                        ("region", site.icb), ("trust", "RX2")):
        before = audit.chain_head(site.db)[0]
        r = _post(web, site, level, code)
        assert r.status_code == 403, (level, code, r.status_code)
        denied = [e for e in audit.entries(site.db, limit=5) if e.seq > before and e.action == "record_assessment"]
        assert denied and denied[0].outcome == "denied"
        assert not site.db.execute("SELECT 1 FROM assessments WHERE area_code = ? AND username = 'icb1'", [code])


def test_icb_user_may_write_its_own_and_programme_any(site, web):
    sign_in(web, "icb1")
    assert _post(web, site, "icb", site.icb).status_code == 303
    web.cookies.clear()
    sign_in(web, "programme1")
    assert _post(web, site, "icb", site.other_icb).status_code == 303
    web.cookies.clear()
    sign_in(web, "practice1")
    assert _post(web, site, "practice", "J82155").status_code == 403


def test_icb_user_may_write_for_a_practice_inside_its_icb(site, web):
    sign_in(web, "icb1")
    assert _post(web, site, "practice", "J82155").status_code == 303
