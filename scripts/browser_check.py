#!/usr/bin/env python3
"""Drives headless Chromium through chromedriver (W3C WebDriver, Python stdlib only):
loads `npr serve`'s page, uploads an image through its file input, waits for the result,
checks that a score and one weight per scale (four) are shown, and saves a screenshot.
Called by scripts/browser_check.sh, which starts the server and the driver."""
import argparse
import base64
import json
import sys
import tempfile
import time
import urllib.request

W3C_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Driver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webdriver {method} {path}: {e.code} {e.read()[:500]!r}")

    def start(self, chromium, window):
        profile = tempfile.mkdtemp(prefix="npr-chromium-")
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={window}"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def s(self, path):
        return f"/session/{self.session}{path}"

    def run(self, script, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def wait(self, script, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.run(script)
            if value:
                return value
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}")

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", self.s(""))
            except Exception:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver-port", type=int, required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--image", required=True, help="absolute path of the image to upload")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--weights", type=int, default=4, help="weights the page must show")
    a = ap.parse_args()

    d = Driver(a.driver_port)
    d.start(a.chromium, "1360,1000")
    try:
        d.call("POST", d.s("/url"), {"url": a.url})
        d.wait("return document.querySelector('#model').textContent.startsWith('checkpoint')",
               "the page to load the model description")
        # Upload through the page's own file input, as a person would.
        field = d.call("POST", d.s("/element"), {"using": "css selector", "value": "#files"})[W3C_ELEMENT]
        d.call("POST", d.s(f"/element/{field}/value"), {"text": a.image})
        d.wait("return document.querySelector('.card.done') !== null", "the result card")
        shown = d.run("""
            const c = document.querySelector('.card.done');
            const imgs = [...c.querySelectorAll('.maps img')];
            return {
              failed: c.classList.contains('failed') ? c.textContent : null,
              score: c.querySelector('.score') && c.querySelector('.score').textContent,
              call: c.querySelector('.call') && c.querySelector('.call').textContent,
              weights: [...c.querySelectorAll('.weights .row .value')].map(e => e.textContent),
              maps: imgs.length,
              loaded: imgs.every(i => i.complete && i.naturalWidth > 0),
            };""")
        if shown["failed"]:
            raise RuntimeError(f"the page shows an error: {shown['failed']}")
        score = float(shown["score"])
        weights = [float(w) for w in shown["weights"]]
        problems = []
        if not 0.0 <= score <= 1.0:
            problems.append(f"score {score} outside [0, 1]")
        if len(weights) != a.weights or not all(0.0 <= w <= 1.0 for w in weights):
            problems.append(f"expected {a.weights} weights in [0, 1], the page shows {weights}")
        if shown["maps"] != a.weights + 1 or not shown["loaded"]:
            problems.append(f"expected {a.weights + 1} loaded maps, the page shows {shown['maps']}")
        # Folder mode, when on: wait until the table is scored, for the screenshot.
        if d.run("return !document.querySelector('#folder').hidden"):
            d.wait("const s = document.querySelector('#folder-status').textContent;"
                   "const m = s.match(/^(\\d+) of (\\d+) scored/); return m && m[1] === m[2];",
                   "the folder table to be scored")
        png = base64.b64decode(d.call("GET", d.s("/screenshot")))
        with open(a.screenshot, "wb") as f:
            f.write(png)
        if problems:
            raise RuntimeError("; ".join(problems))
        print(f"browser check: the page shows score {score:.4f} ({shown['call']}) and "
              f"{len(weights)} weights {weights}; screenshot {a.screenshot}")
    finally:
        d.quit()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line that says what failed
        print(f"browser check FAILED: {e}", file=sys.stderr)
        sys.exit(1)
