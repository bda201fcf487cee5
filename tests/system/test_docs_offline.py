"""/docs and /redoc render with no internet: every asset they load is served by the app."""

from __future__ import annotations

import re

import pytest

from tests.system.conftest import System


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_load_nothing_from_outside(sys_: System, page: str) -> None:
    html = (await sys_.api.get(page)).text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""(?:url|spec-url)\s*:\s*["']([^"']+)["']""", html)
    assert urls, html
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from outside the app"
        assert (await sys_.api.get(url)).status_code == 200, url
    assert "openapi.json" in html
