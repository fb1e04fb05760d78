"""The console end to end: headless Chromium against `threds dev`.

An admin signs in with one click, starts an echo thred from the send form, sees it in the live
table, opens it (the pattern graph with its current reaction highlighted, the event in its
timeline), terminates it and sees its status change; a participant signs in with a pasted token
and sees only their threds; 10,000 live threds render their first page (the figure is reported,
not asserted). Every screen is saved as a PNG in ARTIFACTS, and the browser's console log must
hold no error.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import websocket
from conftest import ARTIFACTS
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20.0

# Installed before the console's script runs: the longest main-thread task and the layout shifts
# not caused by input (Chromium's Long Tasks and Layout Instability APIs).
OBSERVERS = """
window.__longest = 0;
window.__shift = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
}).observe({ type: "longtask", buffered: true });
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value;
}).observe({ type: "layout-shift", buffered: true });
"""


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def find(driver, css: str, timeout: float = WAIT):
    return WebDriverWait(driver, timeout).until(ready.presence_of_element_located((By.CSS_SELECTOR, css)))


def click(driver, css: str, timeout: float = WAIT):
    element = WebDriverWait(driver, timeout).until(ready.element_to_be_clickable((By.CSS_SELECTOR, css)))
    element.click()
    return element


def until(driver, what: str, check, timeout: float = WAIT):
    return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: check(d), message=what
    )


def follow(driver, css: str, timeout: float = WAIT):
    """Clicks the element `css` selects; the live table may redraw it meanwhile, so it is found
    again until the click lands."""

    def attempt(d):
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    until(driver, f"a click on {css}", attempt, timeout)


def errors_in_log(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def rows(driver) -> list[str]:
    return [r.get_attribute("data-thred") for r in driver.find_elements(By.CSS_SELECTOR, "#threds-body tr[data-thred]")]


def start_threds(dev, participant: str, count: int, echo_to: list[str]) -> list[str]:
    """Sends `count` echo events as `participant` over a WebSocket; the ids of the threds made
    (each event starts one), once every one has been acknowledged."""
    socket = websocket.create_connection(f"ws://127.0.0.1:{dev.port}/ws?token={dev.token(participant)}", timeout=30)
    try:
        for i in range(count):
            event = {"id": f"{participant}-{i}-{time.time_ns()}", "type": "org.wt.echo",
                     "data": {"content": {"values": {"echoTo": echo_to, "echoTitle": "load", "echoContent": str(i)}}}}
            socket.send(json.dumps({"event": event}))
        acked, threds = 0, set()
        while acked < count or (echo_to == [participant] and len(threds) < count):
            frame = json.loads(socket.recv())
            if "ack" in frame:
                acked += 1
            elif "message" in frame:
                event = frame["message"]["event"]
                if "thredId" not in event or "error" in event.get("data", {}).get("content", {}):
                    raise AssertionError(f"the engine answered with a failure: {frame}")
                threds.add(event["thredId"])
            elif "error" in frame:
                raise AssertionError(f"the server refused an event: {frame}")
        return sorted(threds)
    finally:
        socket.close()


@pytest.fixture(scope="module")
def signed_in_admin(dev, browser):
    browser.get(f"{dev.base}/console")
    find(browser, '#dev-sign-in button[data-participant="admin"]')
    shot(browser, "01-sign-in")
    click(browser, '#dev-sign-in button[data-participant="admin"]')
    find(browser, '#link[data-state="open"]')
    find(browser, "#threds-body")
    return browser


def test_an_admin_starts_watches_opens_and_terminates_an_echo_thred(dev, signed_in_admin):
    driver = signed_in_admin
    assert driver.find_element(By.CSS_SELECTOR, ".who-name").text.startswith("admin")

    # Send an echo event from the form; it is echoed back to the admin.
    driver.get(f"{dev.base}/console#/send")
    find(driver, "#send-form")
    click(driver, "#send-submit")
    sent = time.monotonic()
    link = find(driver, "#send-results a.open-thred")
    thred = link.get_attribute("href").rsplit("/", 1)[1]
    find(driver, "#send-ack")
    until(driver, "the ack", lambda d: "accepted" in d.find_element(By.ID, "send-ack").text)
    shot(driver, "02-send")

    # The live table has it: the watch told the console while the send form was open.
    driver.find_element(By.CSS_SELECTOR, '#nav a[href="#/threds"]').click()
    find(driver, f'#threds-body tr[data-thred="{thred}"]', timeout=5)
    seen = time.monotonic() - sent
    print(f"\nconsole: the new thred was in the live table {seen * 1000:.0f} ms after the send was clicked")
    assert seen < 1.0, f"the thred appeared in the live table after {seen:.2f} s, not within 1 s"
    until(driver, "the row", lambda d: d.find_element(By.CSS_SELECTOR, f'#threds-body tr[data-thred="{thred}"]').get_attribute("data-status") == "active")
    until(driver, "the row's pattern", lambda d: "echo" in d.find_element(By.CSS_SELECTOR, f'#threds-body tr[data-thred="{thred}"]').text)
    shot(driver, "03-live-threds")

    # Open it: the graph highlights the current reaction; the event is in the timeline.
    follow(driver, f'#threds-body tr[data-thred="{thred}"] a')
    current = find(driver, '#thred-graph svg.graph g.node.current[data-reaction="echo"]')
    assert current is not None
    assert len(driver.find_elements(By.CSS_SELECTOR, "#thred-graph svg.graph g.node.current")) == 1
    find(driver, '#thred-timeline li.in[data-type="org.wt.echo"]')
    find(driver, '#thred-timeline li.out[data-type="org.wt.tell"]')
    assert "echoTimes" in driver.find_element(By.ID, "thred-locals").text
    assert driver.find_element(By.ID, "thred-status").text == "active"
    shot(driver, "04-thred")

    # Terminate it, behind a confirmation; its status changes.
    click(driver, "#thred-terminate")
    dialog = find(driver, "dialog#confirm[open]")
    assert "Terminate thred" in dialog.text
    shot(driver, "05-confirm-terminate")
    click(driver, "#confirm-ok")
    until(driver, "the status to become terminated", lambda d: d.find_element(By.ID, "thred-status").text == "terminated")
    assert not driver.find_elements(By.CSS_SELECTOR, "#thred-terminate")
    shot(driver, "06-thred-terminated")

    # In the table it is terminated too.
    driver.find_element(By.CSS_SELECTOR, '#nav a[href="#/threds"]').click()
    find(driver, "#filter-status")
    driver.execute_script("const s = document.getElementById('filter-status'); s.value = 'terminated'; s.dispatchEvent(new Event('change'));")
    find(driver, f'#threds-body tr[data-thred="{thred}"][data-status="terminated"]')

    assert errors_in_log(driver) == []


def test_patterns_and_health_screens_render_and_the_console_works_at_phone_width(dev, signed_in_admin):
    driver = signed_in_admin
    driver.get(f"{dev.base}/console#/patterns")
    find(driver, "#pattern-graph svg.graph g.node")
    assert "Valid" in driver.find_element(By.ID, "pattern-validation").text
    assert '"reactions"' in driver.find_element(By.ID, "pattern-source").text
    shot(driver, "07-patterns")
    driver.get(f"{dev.base}/console#/patterns/approval")
    find(driver, '#pattern-graph svg.graph g.node[data-reaction="answer"]')
    # The expiry of `answer` is an edge of its own.
    find(driver, '#pattern-graph svg.graph g.edge.expiry[data-from="answer"]')
    shot(driver, "08-pattern-approval")
    # `or` and `and` conditions: their operands in the node, each operand's transition labelled.
    driver.get(f"{dev.base}/console#/patterns/vote")
    ballot = find(driver, '#pattern-graph svg.graph g.node[data-reaction="ballot"]')
    assert "or · 2 operands" in ballot.text and "vote.yes" in ballot.text
    quorum = driver.find_element(By.CSS_SELECTOR, '#pattern-graph svg.graph g.node[data-reaction="quorum"]')
    assert "and · 2 operands" in quorum.text
    back = driver.find_element(By.CSS_SELECTOR, '#pattern-graph svg.graph g.edge[data-from="ballot"][data-to="open"]')
    assert back.text == "or 2"
    driver.find_element(By.CSS_SELECTOR, '#pattern-graph svg.graph g.edge[data-from="quorum"][data-to="$end"]')
    shot(driver, "08b-pattern-and-or")

    driver.get(f"{dev.base}/console#/health")
    until(driver, "a rate figure", lambda d: d.find_element(By.CSS_SELECTOR, "#health-rate .value").text not in ("", "…"), timeout=10)
    assert int(driver.find_element(By.CSS_SELECTOR, "#health-dead .value").text.replace(",", "")) == 0
    shot(driver, "09-health")

    # Keyboard: the navigation is reachable with Tab and followed with Enter.
    driver.get(f"{dev.base}/console#/health")
    find(driver, "#health-tiles .tile")
    body = driver.find_element(By.TAG_NAME, "body")
    for _ in range(12):
        body.send_keys(Keys.TAB)
        focused = driver.switch_to.active_element
        if focused.get_attribute("href") and focused.get_attribute("href").endswith("#/threds") and focused.text == "Threds":
            focused.send_keys(Keys.ENTER)
            break
    find(driver, "#threds-body")

    driver.set_window_size(390, 844)
    try:
        find(driver, "#threds-body")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        viewport = driver.execute_script("return window.innerWidth")
        assert width <= viewport, f"the page is {width} px wide at a {viewport} px viewport"
        shot(driver, "10-phone-threds")
    finally:
        driver.set_window_size(1280, 800)

    assert errors_in_log(driver) == []


def test_a_participant_signed_in_with_a_pasted_token_sees_only_their_threds(dev, signed_in_admin):
    driver = signed_in_admin
    bobs = start_threds(dev, "bob", 3, ["bob"])
    start_threds(dev, "carol", 2, ["carol"])
    click(driver, "#sign-out")
    find(driver, "#token-form")
    driver.find_element(By.ID, "token").send_keys(dev.token("bob"))
    click(driver, "#token-sign-in")
    find(driver, '#link[data-state="open"]')
    until(driver, "bob's threds", lambda d: set(rows(d)) == set(bobs))
    assert driver.find_element(By.CSS_SELECTOR, ".who-name").text == "bob"
    # An admin-only screen is not offered.
    assert not driver.find_element(By.CSS_SELECTOR, '#nav a[href="#/patterns"]').is_displayed()
    shot(driver, "11-participant-threds")
    driver.get(f"{dev.base}/console#/thred/{bobs[0]}")
    find(driver, '#thred-timeline li[data-type="org.wt.echo"]')
    assert driver.find_element(By.ID, "thred-status").text == "active"
    assert not driver.find_elements(By.CSS_SELECTOR, "#thred-terminate")
    shot(driver, "12-participant-thred")
    click(driver, "#sign-out")
    find(driver, "#token-form")
    assert errors_in_log(driver) == []


def test_ten_thousand_live_threds_render_their_first_page(dev, browser):
    # THREDS_CONSOLE_LOAD=100000 measures a larger table the same way.
    load = int(os.environ.get("THREDS_CONSOLE_LOAD", "10000"))
    before = dev.metric("threds_live_threds")
    started = time.monotonic()
    start_threds(dev, "loader", load, ["nobody"])
    took = time.monotonic() - started
    total = before + load
    deadline = time.monotonic() + 120
    while dev.metric("threds_live_threds") < total and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dev.metric("threds_live_threds") >= total
    print(f"\nconsole: {load:,} threds started through the WebSocket in {took:.1f} s")

    # The page records its longest task (how long it froze) and its layout shifts.
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVERS})
    browser.get(f"{dev.base}/console")
    click(browser, '#dev-sign-in button[data-participant="admin"]')
    find(browser, '#threds-body tr[data-thred]')
    # Measured in the browser, from this load's navigation start.
    browser.refresh()
    find(browser, '#threds-body tr[data-thred]')
    first = float(browser.execute_script("return Number(document.getElementById('view').dataset.firstRender)"))
    until(browser, "every thred listed", lambda d: "loading" not in d.find_element(By.ID, "threds-summary").text, timeout=120)
    listed = int(browser.execute_script("return Number(document.getElementById('view').dataset.rendered)"))
    everything = float(browser.execute_script("return Number(document.getElementById('view').dataset.loadedAt)"))
    assert listed >= load
    assert len(rows(browser)) == 50
    longest = float(browser.execute_script("return window.__longest"))

    # Live updates while the table is open move nothing on the page.
    browser.execute_script("window.__shift = 0")
    start_threds(dev, "loader", 300, ["nobody"])
    until(browser, "the 300 new threds listed", lambda d: int(d.find_element(By.ID, "view").get_attribute("data-rendered")) >= listed + 300, timeout=60)
    shift = float(browser.execute_script("return window.__shift"))
    assert shift == 0, f"live updates shifted the layout (cumulative layout shift {shift})"

    figures = {"live_threds": listed, "first_page_ms": round(first), "all_listed_ms": round(everything),
               "longest_task_ms": round(longest), "layout_shift_during_updates": shift}
    (ARTIFACTS / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"console: {listed:,} live threds: first page rendered {first:.0f} ms after navigation start; every page in by {everything:.0f} ms; longest main-thread task over 50 ms: {longest:.0f} ms (0: none); layout shift during 300 live updates {shift}")
    shot(browser, "13-ten-thousand-threds")
    # The pager walks them without reloading.
    click(browser, "#page-next")
    until(browser, "page 2", lambda d: d.find_element(By.ID, "threds-summary").text.startswith("51–100"))
    assert errors_in_log(browser) == []
