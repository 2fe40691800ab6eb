"""`fleetbid serve --web` with `fleetbid auctions` and a real browser: the announcements of
real auctions, and the live map drawing them (docs/monitoring.md).

The browser test drives Debian's chromium through chromedriver (selenium) and is skipped,
with the reason, where either is missing. FLEETBID_SCREENSHOT=PATH keeps its screenshot
(docs/images/live-map.png is made that way).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetbid.platform.announce import AnnounceGroup
from fleetbid.protocol import announce as a
from fleetbid.replication.wire import Kind

pytestmark = pytest.mark.e2e

VEHICLES = 12
START_S = 120.0  # generous: a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fleetbid(*args: str, cwd: Path, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fleetbid.cli", *args], cwd=cwd, text=True,
                            **kwargs)


def wait_for(what: str, check: Any, timeout: float = START_S, proc: Any = None) -> Any:
    """Poll `check` until it returns something true (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited ({proc.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)
    return result


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    cwd = tmp_path_factory.mktemp("web")
    port = free_port()
    log = (cwd / "serve.err").open("w")  # a file: workers inherit it, a pipe could fill up
    proc = fleetbid("serve", "--vehicles", str(VEHICLES), "--speed", "200", "--web", str(port),
                    cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    state = cwd / ".fleetbid" / "serve.json"
    try:
        wait_for("serve ready", state.exists, proc=proc)
        yield cwd, f"http://127.0.0.1:{port}/"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(cwd: Path, n: int, seed: int) -> subprocess.Popen[str]:
    return fleetbid("request", "--random", str(n), "--seed", str(seed), "--interval", "5",
                    "--json", cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def test_auctions_follows_the_requests_auctions_from_open_to_close(
    served: tuple[Path, str],
) -> None:
    cwd, _ = served
    err = (cwd / "auctions.err").open("w")
    monitor = fleetbid("auctions", "--json", "--count", "3", cwd=cwd, stdout=subprocess.PIPE,
                       stderr=err)
    err.close()
    wait_for("monitor listening", lambda: "listening" in (cwd / "auctions.err").read_text(),
             proc=monitor)
    # A datagram signed with another key, on the fleet's group: dropped, logged.
    group = AnnounceGroup.from_dict(json.loads((cwd / ".fleetbid" / "serve.json").read_text())
                                    ["announce"])
    forger = dataclasses.replace(group, key="00" * 32)
    forged = a.AuctionNews(at=1.0, wall=time.time(), auction_id="forged", state="closed",
                           winner="mallory@localhost")
    frame = forger.codec().encode(Kind.ANNOUNCE, 0, 99, 1, 1, a.encode(forged))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        sock.sendto(frame, (group.address, group.port))
    wait_for("forgery logged", lambda: "dropped: bad_mac" in (cwd / "auctions.err").read_text(),
             proc=monitor)
    rides = request(cwd, 3, seed=11)
    out, _ = rides.communicate(timeout=300)
    outcomes = json.loads(out)["outcomes"]
    lines, _ = monitor.communicate(timeout=120)
    assert monitor.returncode == 0
    news = [json.loads(line) for line in lines.splitlines()]
    assert {n["kind"] for n in news} == {"auction"}
    assert "forged" not in {n["auction_id"] for n in news}
    for outcome in outcomes:
        mine = [n for n in news if n["auction_id"] == outcome["auction_id"]]
        states = [n["state"] for n in mine]
        assert states[0] == "open" and "round" in states, states
        opened = mine[0]
        assert opened["pickup"] == outcome["source"] and opened["bidders"] >= 1
        if outcome["served"]:
            assert "assigned" in states and states[-1] == "closed", states
            assert mine[-1]["winner"] == outcome["vehicle"]
            assigned = next(n for n in mine if n["state"] == "assigned")
            assert assigned["price"] == pytest.approx(outcome["price"])
            bids = [n["best_bid"] for n in mine if "best_bid" in n]
            # First price (the default law): the winner is paid its bid, the best one seen.
            assert max(bids) == pytest.approx(outcome["price"])
        else:
            assert states[-1] in ("closed", "unserved"), states


def chrome() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[test]')")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,850"):
        options.add_argument(arg)
    options.binary_location = binary
    return webdriver.Chrome(options=options, service=Service(driver))


def test_the_live_map_draws_vehicles_moving_and_opens_an_auctions_diagram(
    served: tuple[Path, str], tmp_path: Path,
) -> None:
    from_env = os.environ.get("FLEETBID_SCREENSHOT")
    browser = chrome()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    cwd, url = served
    wait = WebDriverWait(browser, START_S, poll_frequency=0.1)

    def dataset() -> dict[str, str]:
        return browser.execute_script(
            "return Object.assign({}, document.getElementById('map').dataset)")

    rides = None
    try:
        browser.get(url)
        wait.until(lambda _: dataset().get("vehicles") == str(VEHICLES))
        rides = request(cwd, 5, seed=21)
        wait.until(lambda _: int(dataset().get("moving", "0")) > 0)
        before = browser.execute_script("return window.fleetbidMap.positions()")
        wait.until(lambda _: any(
            pos != before.get(v) for v, pos in
            browser.execute_script("return window.fleetbidMap.positions()").items()))
        wait.until(lambda _: int(dataset().get("waiting", "0")) > 0
                   or int(browser.find_element(By.ID, "served").text) > 0)
        shot = Path(from_env) if from_env else tmp_path / "live-map.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        # The canvas is drawn (not blank): the road layer and the vehicles' colours.
        painted = browser.execute_script("""
            const c = document.getElementById('map'), g = c.getContext('2d');
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 200) n++;
            return n;""")
        assert painted > 1000
        # The table is redrawn four times a second: find and click a row in one step.
        auction = wait.until(lambda _: browser.execute_script("""
            const row = document.querySelector('#auctions tbody tr.state-assigned, '
              + '#auctions tbody tr.state-closed, #auctions tbody tr.state-picked_up');
            if (!row) return null;
            row.click();
            return row.dataset.auction;"""))
        assert browser.find_element(By.ID, "diagram").is_displayed()
        browser.switch_to.frame(browser.find_element(By.ID, "diagram-frame"))
        svg = wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "svg"))
        assert auction in browser.execute_script("return document.title")
        assert "main-manager" in svg[0].get_attribute("outerHTML")
    finally:
        browser.quit()
        if rides is not None:
            rides.communicate(timeout=300)
