"""The web app's routes as plain HTTP: what the page and its assets answer, their caching and
policies, that they stay out of the API's document, and that the wheel ships them."""

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from entrypoints.web.site import STATIC_DIR, Site
from tests.http.support import Client, assert_problem

ROOT = Path(__file__).parents[2]
IMMUTABLE = "public, max-age=31536000, immutable"


def asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/assets/[^"]+)"', page)


def test_the_page_needs_no_token_and_is_revalidated_on_every_load(
    session_client: Client,
) -> None:
    response = session_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    etag = response.headers["etag"]
    again = session_client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag


def test_the_page_has_a_strict_content_security_policy(session_client: Client) -> None:
    response = session_client.get("/")
    directives = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["content-security-policy"].split("; ")
    }
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["require-trusted-types-for"] == ["'script'"]
    # Nothing inline in the page: no script or style body, no style or on* attribute.
    page = response.text
    assert [body for body in re.findall(r"<script[^>]*>(.*?)</script>", page, re.S) if body] == []
    assert "<style" not in page
    assert not re.search(r"\s(style|on\w+)=", page)


def test_assets_are_cached_for_a_year_under_a_versioned_url(session_client: Client) -> None:
    page = session_client.get("/").text
    urls = asset_urls(page)
    names = {url.rsplit("/", 1)[1] for url in urls}
    assert {"style.css", "app.js", "api.js", "dom.js", "icon.svg"} <= names
    assert len({url.rsplit("/", 1)[0] for url in urls}) == 1  # one version for all
    types = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
    for url in urls:
        response = session_client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == IMMUTABLE
        assert response.headers["content-type"].startswith(types[Path(url).suffix])
        cached = session_client.get(url, headers={"If-None-Match": response.headers["etag"]})
        assert cached.status_code == 304


def test_every_module_the_scripts_import_is_served(session_client: Client) -> None:
    urls = asset_urls(session_client.get("/").text)
    base = urls[0].rsplit("/", 1)[0]
    for url in urls:
        if url.endswith(".js"):
            source = session_client.get(url).text
            for module in re.findall(r'from "\./([^"]+)"', source):
                assert session_client.get(f"{base}/{module}").status_code == 200, module


@pytest.mark.parametrize(
    "path",
    ["/assets/0000000000000000/app.js", "/assets/app.js", "/index.html", "/nowhere", "/api/nope"],
)
def test_anything_else_is_a_problem_details_404(session_client: Client, path: str) -> None:
    assert_problem(session_client.get(path), 404)


def test_an_asset_of_another_version_is_gone(session_client: Client) -> None:
    url = next(url for url in asset_urls(session_client.get("/").text) if url.endswith("app.js"))
    version = url.split("/")[2]
    assert_problem(session_client.get(url.replace(version, "f" * len(version))), 404)


def test_the_page_is_not_part_of_the_api_document(session_client: Client) -> None:
    paths = session_client.get("/schema/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/assets")]
    assert all(path.startswith(("/api/", "/health", "/metrics")) for path in paths)


def test_a_changed_asset_gets_a_new_version(tmp_path: Path) -> None:
    copy = tmp_path / "static"
    shutil.copytree(STATIC_DIR, copy)
    before = Site.load(copy)
    (copy / "style.css").write_text((copy / "style.css").read_text() + "\n/* changed */\n")
    after = Site.load(copy)
    assert after.version != before.version
    assert f"/assets/{after.version}/style.css".encode() in after.page.body
    assert b"{{assets}}" not in after.page.body


def test_the_wheel_ships_the_web_app(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    subprocess.run(  # noqa: S603 - uv itself, building this project
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("*.whl")
    shipped = {
        name.removeprefix("entrypoints/web/static/")
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith("entrypoints/web/static/")
    }
    assert shipped == {path.name for path in STATIC_DIR.iterdir()}
