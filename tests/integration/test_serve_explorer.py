"""The explorer in a real headless browser (Debian's chromium, driven by Playwright; never a browser of
Playwright's own): it loads, shows a write made through the CLI as it happens, draws a merge in the log's
DAG, and runs an SQL query on a table database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve_process import ServeProcess, orbit_cli

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 20_000


def ok(directory: Path, *args: str, cwd: Path | None = None) -> str:
    out = orbit_cli(directory, *args)
    assert out.returncode == 0, f"orbit {' '.join(args)}: {out.stderr}"
    return out.stdout.strip()


@pytest.fixture
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), "the explorer's test needs Debian's chromium: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServeProcess]:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    bob_did = ok(bob, "id")
    ok(alice, "create", "kv", "--type", "keyvalue", "--write", bob_did)
    ok(alice, "put", "kv", "first", "1")
    ok(
        alice,
        "create",
        "people",
        "--type",
        "table",
        "--schema",
        "CREATE TABLE people (id TEXT PRIMARY KEY, born INTEGER)",
    )
    ok(alice, "sql", "people", "INSERT INTO people VALUES ('ada', 1815)", "--write")
    with ServeProcess(alice) as daemon:
        # Bob gets a copy, writes; Alice writes meanwhile; Alice merges Bob's copy: two heads, then a merge
        ok(alice, "export", "kv", str(tmp_path / "a.car"))
        ok(bob, "import", str(tmp_path / "a.car"))
        ok(bob, "put", "kv", "from-bob", '"hi"')
        ok(alice, "put", "kv", "from-alice", '"hello"')
        ok(bob, "export", "kv", str(tmp_path / "b.car"))
        ok(alice, "import", str(tmp_path / "b.car"))
        ok(alice, "put", "kv", "merged", "true")
        yield daemon


def test_the_explorer_shows_live_writes_a_merge_and_runs_sql(served: ServeProcess, browser: Any) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{served.url}/#token={served.token}")
    page.wait_for_selector("#conn.live", timeout=TIMEOUT_MS)
    assert "#token" not in page.url  # the token does not stay in the address bar
    page.click("nav button[data-name=kv]")
    page.wait_for_selector("#entries tbody tr[data-cid]", timeout=TIMEOUT_MS)

    # the merge: an entry with two parents, drawn hollow, with an edge to each
    merge = page.wait_for_selector("#dag g.node.merge", timeout=TIMEOUT_MS)
    cid = merge.get_attribute("data-cid")
    assert page.locator(f'#dag path[data-from="{cid}"]').count() == 2
    assert "PUT merged = true" in (merge.text_content() or "")
    assert page.locator("#entries tbody td.ok").count() == page.locator("#entries tbody tr[data-cid]").count()
    assert page.locator("#replication dd[data-field=replicating]").text_content().startswith("no")

    # a write through the CLI appears without a reload
    rows_before = page.locator("#entries tbody tr[data-cid]").count()
    ok(served.directory, "put", "kv", "live", '"from the CLI"')
    page.wait_for_selector('#entries tbody tr:has-text("PUT live = \\"from the CLI\\"")', timeout=TIMEOUT_MS)
    assert page.locator("#entries tbody tr[data-cid]").count() == rows_before + 1

    # SQL on the table database
    page.click("nav button[data-name=people]")
    page.wait_for_selector("#sql:not(.hidden)", timeout=TIMEOUT_MS)
    page.fill("#sql-text", "SELECT id, born FROM people WHERE born < ?")
    page.fill("#sql-params", "[1900]")
    page.click("#sql-run")
    cell = page.wait_for_selector("#sql-result td:has-text('ada')", timeout=TIMEOUT_MS)
    assert cell is not None
    assert page.locator("#sql-result td").all_text_contents() == ["ada", "1815"]
    assert errors == []
    page.fill("#sql-text", "DROP TABLE people")
    page.click("#sql-run")
    refused = page.wait_for_selector("#sql-result p.bad", timeout=TIMEOUT_MS)
    assert refused is not None
    assert errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
