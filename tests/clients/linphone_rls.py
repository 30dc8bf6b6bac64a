#!/usr/bin/env python3
"""Real-client interop check: Linphone's `linphonec` (liblinphone 5.1, Debian `linphone-cli`)
subscribing to a resource list (RFC 4662) served by presenced.

The server under test is the only SIP peer: it is linphone's outbound proxy (a proxy config with
`reg_route` pointing at it and `reg_sendregister=0`, so no REGISTER is sent). linphone sends ONE
list SUBSCRIBE (Event: presence, Supported: eventlist) to --list and must get back NOTIFYs whose
body is multipart/related;type="application/rlmi+xml". For each PIDF part it understood,
linphonec prints `Friend "name" <sip:bob@example.com> is Online`; this script collects those lines.

    python3 tests/clients/linphone_rls.py --proxy 127.0.0.1:5060 --transport udp \
        --identity sip:alice@example.com --list sip:alice-buddies@example.com \
        --buddy sip:bob@example.com --buddy sip:carol@example.com \
        --expect sip:bob@example.com=open --expect sip:carol@example.com=closed --timeout 20

Prints one JSON line on stdout:

    {"buddies": {"sip:bob@example.com": "Online", "sip:carol@example.com": "Offline"},
     "subscribed_to_list": true}

Statuses are linphone's words (linphone_online_status_to_string: Online, Offline, Away, Busy,
Do not disturb, Out to lunch, On the phone, Vacation, ...; null = nothing received). An --expect
value matches the status itself (case-insensitive) or its basic state: `open`/`online` match any
status but Offline/Pending/Unknown, `closed`/`offline` match Offline. Exit 0 when the list
subscription became active and every expectation was met (with no --expect: once every --buddy has
a status), 1 otherwise (timeout), 2 when linphonec is not installed. On failure the linphone log
lines that explain why (rlmi+xml and multipart warnings, subscription states) go to stderr.

Two ways of subscribing (--mode):
  bodyless (default)  `[sip] bodyless_lists=LIST`: a plain RFC 4662 SUBSCRIBE without body; the
                      server owns the list. linphone creates a friend for every RLMI <resource>.
  body                `[sip] rls_uri=LIST` plus one `[friend_N]` per --buddy: linphone puts the
                      buddies in the SUBSCRIBE itself (RFC 5367 style: `Require:
                      recipient-list-subscribe`, `Content-Disposition: recipient-list`, an
                      application/resource-lists+xml body). A server that does not support that
                      extension has to answer 420.
`[sip] handle_content_encoding=none` is set so that linphone neither deflates that body nor sends
Accept-Encoding: deflate; --deflate keeps linphone's default.

What liblinphone 5.1.65 / belle-sip 5.1.64 need in the NOTIFY before they show anything (read from
their source; see the docs of this test): the Event header must be spelled `Presence` (the core
compares the NOTIFY's Event value with strcmp to "Presence"), the multipart boundary parameter must
be unquoted, the body must begin with the first delimiter, each PIDF part must carry a header named
exactly `Content-Id` (case-sensitive) whose raw value equals the RLMI `cid` attribute (no angle
brackets), and the first NOTIFY (version 0) must be fullState="true".

Runs linphonec on a pseudo-terminal (its readline loop only iterates the core on a tty, and its
presence lines are plain printf) with a temporary HOME and linphonerc; -d 6 -l writes the SIP trace
to a log file (kept with --log-dir). linphonec is sent `quit`, then killed, and the script stops
within --timeout.
"""

import argparse
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FRIEND_LINE = re.compile(r'Friend (?:"[^"]*" )?<?(sips?:[^>\s]+)>? is ([^\r\n]+)')
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LIST_STATE = re.compile(r"Receiving new state \[LinphoneSubscription(\w+)\] for event \[[^\]]*\] for friend list")
WHY = re.compile(r"rlmi\+xml|multipart|Notify presence for list|for friend list|SIP/2.0 [3-6]\d\d")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", required=True, help="HOST:PORT of the server (outbound proxy)")
    ap.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    ap.add_argument("--identity", required=True, help="our SIP identity, e.g. sip:alice@example.com")
    ap.add_argument("--list", required=True, help="resource list URI, e.g. sip:alice-buddies@example.com")
    ap.add_argument("--buddy", action="append", default=[], help="list member to report (repeatable)")
    ap.add_argument("--expect", action="append", default=[], metavar="URI=STATUS",
                    help="wait until URI shows STATUS (open|closed|online|offline|Away|...)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds for the whole run")
    ap.add_argument("--mode", choices=("bodyless", "body"), default="bodyless")
    ap.add_argument("--expires", type=int, default=3600, help="Expires of the list SUBSCRIBE")
    ap.add_argument("--deflate", action="store_true", help="let linphone use Content-Encoding: deflate")
    ap.add_argument("--log-dir", help="keep linphonerc and linphone.log there")
    ap.add_argument("--verbose", action="store_true", help="echo linphonec's terminal to stderr")
    args = ap.parse_args()
    args.expectations = {}
    for e in args.expect:
        uri, sep, status = e.rpartition("=")
        if not sep or not uri:
            ap.error(f"--expect wants URI=STATUS, got {e!r}")
        args.expectations[uri] = status
    return args


def linphonerc(args):
    """The whole configuration: one proxy config used as outbound proxy, no registration."""
    host, _, port = args.proxy.rpartition(":")
    t = args.transport
    lines = [
        "[sip]",
        f"sip_port={-1 if t == 'udp' else 0}",  # -1: random local port, 0: transport disabled
        f"sip_tcp_port={-1 if t == 'tcp' else 0}",
        "sip_tls_port=0",
        "default_proxy=0",
        # otherwise the list is subscribed only once the proxy config is registered
        "subscribe_presence_only_when_registered=0",
        f"rls_presence_expires={args.expires}",
    ]
    if not args.deflate:
        lines.append("handle_content_encoding=none")
    if args.mode == "bodyless":
        lines.append(f"bodyless_lists={args.list}")
    else:
        lines.append(f"rls_uri={args.list}")  # RLS of the default friend list
    lines += [
        "[net]", "friendlist_subscription_enabled=1",
        "[proxy_0]",
        f"reg_proxy=<sip:{host}:{port};transport={t}>",
        f"reg_route=<sip:{host}:{port};transport={t};lr>",
        f"reg_identity={args.identity}",
        "reg_sendregister=0",
        "publish=0",
    ]
    if args.mode == "body":
        for i, b in enumerate(args.buddy):
            lines += [f"[friend_{i}]", f"url={b}", "subscribe=1", "pol=accept"]
    return "\n".join(lines) + "\n"


def matches(status, want):
    if status is None:
        return False
    s, w = status.strip().lower(), want.strip().lower()
    if s == w:
        return True
    if w in ("open", "online"):
        return s not in ("offline", "pending", "unknown status")
    if w in ("closed", "offline"):
        return s == "offline"
    return False


def uri_key(uri):
    """sip:bob@example.com;gr=x -> sip:bob@example.com, to compare with --buddy/--expect."""
    return uri.split(";")[0]


class Linphonec:
    def __init__(self, workdir, rc_path, log_path, verbose):
        self.verbose = verbose
        home = os.path.join(workdir, "home")
        os.makedirs(os.path.join(home, ".local", "share", "linphone"), exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_DATA_HOME=os.path.join(home, ".local", "share"), TERM="dumb")
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            ["linphonec", "-c", rc_path, "-d", "6", "-l", log_path],
            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=workdir,
            close_fds=True, start_new_session=True)
        os.close(slave)
        self.pending = ""

    def read_lines(self, wait):
        """Lines printed by linphonec within `wait` seconds."""
        r, _, _ = select.select([self.master], [], [], max(wait, 0))
        if not r:
            return []
        try:
            data = os.read(self.master, 65536).decode(errors="replace")
        except OSError:  # EIO: linphonec is gone
            return []
        if self.verbose:
            sys.stderr.write(data)
        self.pending += ANSI.sub("", data).replace("\r", "")
        *lines, self.pending = self.pending.split("\n")
        return lines

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace=1.0):
        if self.alive():
            try:
                os.write(self.master, b"quit\n")
            except OSError:
                pass
            end = time.monotonic() + grace
            while self.alive() and time.monotonic() < end:
                self.read_lines(0.1)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.close(self.master)
        except OSError:
            pass


def list_states(log_path):
    try:
        with open(log_path, errors="replace") as f:
            return LIST_STATE.findall(f.read())
    except OSError:
        return []


def explain(log_path):
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                if WHY.search(line) and not line.startswith(("Accept", "Content-Type")):
                    sys.stderr.write(line if line.endswith("\n") else line + "\n")
    except OSError:
        pass


def main():
    args = parse_args()
    started = time.monotonic()
    # keep ~1.5 s of the budget for stopping linphonec
    deadline = started + max(args.timeout - 1.5, 1.0)
    if shutil.which("linphonec") is None:
        print("SKIP linphonec not installed (apt-get install -y linphone-cli)", file=sys.stderr)
        print(json.dumps({"buddies": {b: None for b in args.buddy}, "subscribed_to_list": False}))
        return 2

    workdir = args.log_dir or tempfile.mkdtemp(prefix="linphone_rls.")
    os.makedirs(workdir, exist_ok=True)
    rc_path = os.path.join(workdir, "linphonerc")
    log_path = os.path.join(workdir, "linphone.log")
    with open(rc_path, "w") as f:
        f.write(linphonerc(args))
    if os.path.exists(log_path):
        os.unlink(log_path)

    buddies = {b: None for b in args.buddy}
    subscribed = False
    lc = Linphonec(workdir, rc_path, log_path, args.verbose)
    ok = False
    stop_signal = []

    def on_signal(signum, _frame):
        stop_signal.append(signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while time.monotonic() < deadline and not stop_signal:
            for line in lc.read_lines(min(0.25, deadline - time.monotonic())):
                m = FRIEND_LINE.search(line)
                if m:
                    buddies[uri_key(m.group(1))] = m.group(2).strip()
            states = list_states(log_path)
            # Active after a 2xx/NOTIFY; Pending after 202 or Subscription-State: pending
            subscribed = bool(states) and states[-1] in ("Active", "Pending")
            if args.expectations:
                met = all(matches(buddies.get(u), w) for u, w in args.expectations.items())
            else:
                met = bool(args.buddy) and all(buddies.get(b) is not None for b in args.buddy)
            if subscribed and met:
                ok = True
                break
            if not lc.alive():
                print(f"linphonec exited early (rc={lc.proc.returncode})", file=sys.stderr)
                break
    finally:
        lc.stop()
    print(json.dumps({"buddies": buddies, "subscribed_to_list": subscribed}), flush=True)
    if not ok:
        print(f"FAIL expectations {args.expectations or args.buddy} not met in {args.timeout:g}s"
              "; linphone log lines that tell why:", file=sys.stderr)
        explain(log_path)
    if not args.log_dir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
