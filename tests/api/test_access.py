"""Who may see what: every route of the app refuses an anonymous caller and a tenant of another
unit (except health and login); sessions, CSRF, tokens with scope and expiry, the login rate
limit, the cookie flags."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from lastgang.api.accounts import Role, Scope
from lastgang.api.auth import LoginLimiter, Need, Principal, decide, need_of

from .conftest import PASSWORD, SITE, World, login

PUBLIC = {("GET", "/health"), ("GET", "/login"), ("POST", "/login")}


def _flat(routes: list[Any]) -> list[Any]:
    """Every route of the app, with included routers opened up."""
    out: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out.extend(_flat(list(inner.routes)))
        else:
            out.append(route)
    return out


def _routes(world: World) -> list[tuple[str, str, Any]]:
    out = []
    for route in _flat(list(world.app.routes)):
        if isinstance(route, Mount):
            assert route.path.startswith("/static"), route.path
            continue
        assert isinstance(route, APIRoute | Route), route
        for method in sorted(route.methods or ()):
            if method in ("HEAD", "OPTIONS"):
                continue
            out.append((method, route.path, route))
    return out


def _fill(world: World, path: str) -> str:
    values = {
        "site_id": SITE,
        "unit_id": "top1",
        "run_id": str(world.final_run),
        "invoice_id": world.invoices["top1"],
        "job_id": str(world.import_job),
        "version": "1",
        "target": "top1",
    }
    filled = path
    for name, value in values.items():
        filled = filled.replace("{" + name + "}", value)
    assert "{" not in filled, f"no test value for a parameter of {path}"
    return filled


def _guards(route: Any) -> list[Need]:
    deps = route.dependant.dependencies if isinstance(route, APIRoute) else []
    found = []
    stack = list(deps)
    while stack:
        d = stack.pop()
        need = need_of(d.call)
        if need is not None:
            found.append(need)
        stack.extend(d.dependencies)
    return found


def test_every_route_has_exactly_one_guard_and_only_health_and_login_are_public(
    world: World,
) -> None:
    routes = _routes(world)
    assert len(routes) > 40
    for method, path, route in routes:
        assert isinstance(route, APIRoute), f"{method} {path} is not guarded by auth.py"
        guards = _guards(route)
        assert len(guards) == 1, f"{method} {path} has guards {guards}"
        if guards[0] is Need.PUBLIC:
            assert (method, path) in PUBLIC, f"{method} {path} is public"


def test_every_route_refuses_an_anonymous_caller(world: World) -> None:
    client = world.new_client()
    for method, path, _route in _routes(world):
        if (method, path) in PUBLIC:
            continue
        url = _fill(world, path)
        r = client.request(method, url)
        if path.startswith("/api/"):
            assert r.status_code == 401, f"{method} {url}: {r.status_code}"
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["status"] == 401
        else:
            assert r.status_code in (401, 303), f"{method} {url}: {r.status_code}"
            if r.status_code == 303:
                assert r.headers["location"].startswith("/login"), f"{method} {url}"
        text = r.text.replace(url.split("?")[0], "")  # a problem names the address asked for
        assert world.invoices["top1"] not in text
        assert "Anna Berger" not in text


def test_every_route_refuses_a_tenant_of_another_unit(world: World) -> None:
    client = world.new_client()
    csrf = login(client, "tenant2")
    for method, path, route in _routes(world):
        if (method, path) in PUBLIC or path == "/logout":  # logout ends the session: tested below
            continue
        url = _fill(world, path)
        r = client.request(method, url, headers={"X-CSRF-Token": csrf})
        need = _guards(route)[0]
        if need is Need.SIGNED_IN:
            # not about a unit: allowed, but shows nothing of Top 1
            assert r.status_code < 500, f"{method} {url}: {r.status_code}"
        else:
            assert r.status_code in (403, 404), f"{method} {url}: {r.status_code} {r.text[:200]}"
        text = r.text.replace(url.split("?")[0], "")
        assert world.invoices["top1"] not in text, f"{method} {url} shows Top 1's invoice"
        assert "Anna Berger" not in text, f"{method} {url} shows Top 1's tenant"


def test_a_tenant_sees_its_own_final_invoices_but_no_drafts(world: World) -> None:
    client = world.new_client()
    login(client, "tenant1")
    own = world.invoices["top1"]
    unit = client.get(f"/api/v1/sites/{SITE}/units/top1").json()
    assert [i["number"] for i in unit["invoices"]] == [own]
    assert unit["contracts"][0]["customer"] == "Anna Berger"
    assert client.get(f"/api/v1/sites/{SITE}/invoices/{own}").json()["unit_id"] == "top1"
    pdf = client.get(f"/api/v1/sites/{SITE}/invoices/{own}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    draft = world.draft_invoices["top1"]
    assert client.get(f"/api/v1/sites/{SITE}/invoices/{draft}").status_code == 403
    assert client.get(f"/api/v1/sites/{SITE}/units/top1/charts/consumption").status_code == 200
    # the whole site is not a tenant's
    assert client.get(f"/api/v1/sites/{SITE}").status_code == 403
    assert client.get(f"/api/v1/sites/{SITE}/quality").status_code == 403
    page = client.get("/sites")
    assert page.status_code == 303 and page.headers["location"] == f"/sites/{SITE}/units/top1"


def test_token_scopes_and_expiry(world: World) -> None:
    c = world.new_client()
    ro, op, adm = world.bearer("read-only"), world.bearer("operator"), world.bearer("admin")
    assert c.get(f"/api/v1/sites/{SITE}/meters", headers=ro).status_code == 200
    body = {"toml": "x"}
    assert c.post(f"/api/v1/sites/{SITE}/check", json=body, headers=ro).status_code == 403
    assert c.post(f"/api/v1/sites/{SITE}/check", json=body, headers=op).status_code == 200
    assert c.get(f"/api/v1/sites/{SITE}/audit", headers=op).status_code == 403
    assert c.get(f"/api/v1/sites/{SITE}/audit", headers=adm).status_code == 200
    # a site token never reaches another site or the creation of sites
    assert c.post("/api/v1/sites", json=body, headers=adm).status_code == 403
    expired = c.get(f"/api/v1/sites/{SITE}", headers=world.bearer("expired"))
    assert expired.status_code == 401
    assert "unknown or expired" in expired.json()["detail"]
    forged = {"Authorization": world.bearer("admin")["Authorization"][:-2] + "xx"}
    assert c.get(f"/api/v1/sites/{SITE}", headers=forged).status_code == 401


def test_tokens_are_stored_hashed(world: World) -> None:
    accounts = world.app.state.lastgang.accounts
    rows = accounts._rows("SELECT token_sha256 FROM web_tokens")
    stored = {r[0] for r in rows}
    for text in world.tokens.values():
        assert text not in stored
        assert not any(text in s for s in stored)


def test_passwords_are_argon2_hashes(world: World) -> None:
    rows = world.app.state.lastgang.accounts._rows("SELECT password_hash FROM web_users")
    assert rows and all(r[0].startswith("$argon2id$") for r in rows)
    assert all(PASSWORD not in r[0] for r in rows)


def test_session_cookie_flags_and_csrf(world: World) -> None:
    client = world.new_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    # a login without the form's token is refused
    r = client.post(
        "/login", data={"name": "operator", "password": PASSWORD, "csrf_token": "wrong"}
    )
    assert r.status_code == 403
    r = client.post(
        "/login", data={"name": "operator", "password": PASSWORD, "csrf_token": token[1]}
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain http on loopback
    # a change without the session's CSRF token is refused, with it accepted
    body = {"toml": "x"}
    r = client.post(f"/api/v1/sites/{SITE}/check", json=body)
    assert r.status_code == 403 and r.json()["type"].endswith(":csrf")
    csrf = client.get("/api/v1/me").json()["csrf_token"]
    r = client.post(f"/api/v1/sites/{SITE}/check", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    # a form without the token is refused too
    r = client.post("/logout", data={})
    assert r.status_code == 403
    r = client.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_secure_cookie_over_https(world: World) -> None:
    client = TestClient(world.app, base_url="https://testserver", follow_redirects=False)
    page = client.get("/login")
    assert "Secure" in page.headers["set-cookie"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post(
        "/login", data={"name": "operator", "password": PASSWORD, "csrf_token": token[1]}
    )
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_wrong_password_and_unknown_user_look_the_same(world: World) -> None:
    client = world.new_client()
    for name in ("operator", "nobody"):
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = client.post(
            "/login", data={"name": name, "password": "not it!", "csrf_token": token[1]}
        )
        assert r.status_code == 401
        assert "Wrong name or password." in r.text


def test_login_rate_limit_per_account_and_address() -> None:
    limiter = LoginLimiter(5, 60.0)
    assert all(limiter.attempt("anna", "10.0.0.1", now=t) == 0 for t in range(5))
    # the sixth attempt on the account within a minute waits, from any address
    assert limiter.attempt("anna", "10.0.0.2", now=5) > 0
    # another account from the first address is limited by the address
    assert limiter.attempt("karl", "10.0.0.1", now=6) > 0
    assert limiter.attempt("karl", "10.0.0.3", now=6) == 0
    # a minute after the first attempts, the account may try again
    assert limiter.attempt("anna", "10.0.0.4", now=61) == 0


def test_login_is_rate_limited_over_http(tmp_path: Any) -> None:
    from lastgang.api.app import create_app

    app = create_app(tmp_path / "rl.duckdb", login_limit=5)
    app.state.lastgang.accounts.add_user("anna", PASSWORD, Role.OPERATOR)
    with TestClient(app, follow_redirects=False) as client:
        statuses = []
        for _ in range(7):
            page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            r = client.post(
                "/login", data={"name": "anna", "password": "wrong one", "csrf_token": token[1]}
            )
            statuses.append(r.status_code)
        assert statuses == [401] * 5 + [429] * 2
        assert int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("who", "need", "site", "unit", "allowed"),
    [
        (Principal("a", "session", Role.ADMIN), Need.ADMIN, "x", None, True),
        (Principal("o", "session", Role.OPERATOR, "x"), Need.OPERATE, "x", None, True),
        (Principal("o", "session", Role.OPERATOR, "x"), Need.READ, "y", None, False),
        (Principal("o", "session", Role.OPERATOR), Need.OPERATE, "y", None, True),
        (Principal("o", "session", Role.OPERATOR), Need.ADMIN, "y", None, False),
        (Principal("t", "session", Role.TENANT, "x", "u1"), Need.UNIT, "x", "u1", True),
        (Principal("t", "session", Role.TENANT, "x", "u1"), Need.UNIT, "x", "u2", False),
        (Principal("t", "session", Role.TENANT, "x", "u1"), Need.READ, "x", None, False),
        (Principal("k", "token", site_id="x", scope=Scope.READ_ONLY), Need.UNIT, "x", "u", True),
        (
            Principal("k", "token", site_id="x", scope=Scope.READ_ONLY),
            Need.OPERATE,
            "x",
            None,
            False,
        ),
        (
            Principal("k", "token", site_id="x", scope=Scope.OPERATOR),
            Need.OPERATE,
            "y",
            None,
            False,
        ),
        (Principal("anonymous", "anonymous"), Need.SIGNED_IN, None, None, False),
    ],
)
def test_decide(
    who: Principal, need: Need, site: str | None, unit: str | None, allowed: bool
) -> None:
    assert decide(who, need, site, unit) is allowed
