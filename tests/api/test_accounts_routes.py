"""Users and API tokens managed while the server runs: an administrator adds users (who can
then sign in), a site's administrator creates tokens (which then work), every problem is named,
nobody else may, and both are in the audit log."""

from __future__ import annotations

from .conftest import PASSWORD, SITE, World, login


def test_an_administrator_adds_a_tenant_who_can_then_sign_in(world: World) -> None:
    client = world.new_client()
    csrf = login(client, "admin")
    body = {
        "name": "berger.anna",
        "password": "a long enough password",
        "role": "tenant",
        "site_id": SITE,
        "unit_id": "top1",
    }
    r = client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["name"], made["role"], made["site_id"], made["unit_id"]) == (
        "berger.anna",
        "tenant",
        SITE,
        "top1",
    )
    assert "password" not in r.text and "argon2" not in r.text
    listed = client.get("/api/v1/users").json()
    assert [u for u in listed if u["name"] == "berger.anna"] == [made]
    audit = client.get(f"/api/v1/sites/{SITE}/audit").json()
    assert any(a["action"] == "user add" and a["subject"] == "user berger.anna" for a in audit)
    # the new tenant signs in and sees its own unit
    tenant = world.new_client()
    login(tenant, "berger.anna", "a long enough password")
    me = tenant.get("/api/v1/me").json()
    assert (me["role"], me["unit_id"]) == ("tenant", "top1")


def test_adding_a_user_names_every_problem_and_adds_nothing(world: World) -> None:
    client = world.new_client()
    csrf = login(client, "admin")
    headers = {"X-CSRF-Token": csrf}
    bad = {"name": "operator", "password": "short", "role": "tenant", "site_id": SITE}
    r = client.post("/api/v1/users", json=bad, headers=headers)
    assert r.status_code == 422
    reasons = " | ".join(e["detail"] for e in r.json()["errors"])
    assert "shorter than 8 characters" in reasons
    assert "a tenant needs --site and --unit" in reasons
    assert "exists already" in reasons
    unknown_unit = {
        "name": "nobody",
        "password": PASSWORD,
        "role": "tenant",
        "site_id": SITE,
        "unit_id": "top9",
    }
    r = client.post("/api/v1/users", json=unknown_unit, headers=headers)
    assert r.status_code == 422
    assert f"site {SITE!r} has no unit 'top9'" in r.text
    assert all(u["name"] != "nobody" for u in client.get("/api/v1/users").json())


def test_only_an_administrator_adds_users(world: World) -> None:
    body = {"name": "mallory", "password": PASSWORD, "role": "admin"}
    operator = world.new_client()
    csrf = login(operator, "operator")
    r = operator.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    # not even with the site's admin token: users are of every site
    r = world.new_client().post("/api/v1/users", json=body, headers=world.bearer("admin"))
    assert r.status_code == 403
    admin = world.new_client()
    login(admin, "admin")
    assert all(u["name"] != "mallory" for u in admin.get("/api/v1/users").json())


def test_a_site_administrator_creates_a_token_that_then_works(world: World) -> None:
    client = world.new_client()
    csrf = login(client, "admin")
    r = client.post(
        f"/api/v1/sites/{SITE}/tokens",
        json={"scope": "read-only", "label": "monthly export", "expires_days": 30},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["site_id"], made["scope"], made["label"]) == (SITE, "read-only", "monthly export")
    assert made["token"].startswith(f"lg_{made['token_id']}_")
    assert made["expires_at"] is not None
    bearer = {"Authorization": f"Bearer {made['token']}"}
    fresh = world.new_client()
    assert fresh.get(f"/api/v1/sites/{SITE}", headers=bearer).status_code == 200
    # read-only: no bill with it
    run = {"first_day": "2025-01-01", "last_day": "2025-01-01"}
    assert fresh.post(f"/api/v1/sites/{SITE}/runs", json=run, headers=bearer).status_code == 403
    audit = client.get(f"/api/v1/sites/{SITE}/audit").json()
    assert any(a["subject"] == f"token {made['token_id']}" for a in audit)


def test_tokens_are_made_by_signed_in_administrators_only(world: World) -> None:
    body = {"scope": "admin"}
    # a token, even an admin one, does not make more tokens
    r = world.new_client().post(
        f"/api/v1/sites/{SITE}/tokens", json=body, headers=world.bearer("admin")
    )
    assert r.status_code == 403
    assert "signed-in user" in r.json()["detail"]
    operator = world.new_client()
    csrf = login(operator, "operator")
    r = operator.post(f"/api/v1/sites/{SITE}/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    admin = world.new_client()
    csrf = login(admin, "admin")
    r = admin.post("/api/v1/sites/nowhere/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 404
    r = admin.post(
        f"/api/v1/sites/{SITE}/tokens",
        json={"scope": "owner", "expires_days": 0},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 422
