#!/usr/bin/env python3
"""Real-client interop check: PJSIP's PJSUA2 (Python binding) against presenced.

presenced is the only server: both accounts have it as their outbound proxy
(`Route: <sip:HOST:PORT;lr>`) and no registrar. alice PUBLISHes her presence, bob SUBSCRIBEs
to alice as a buddy, and bob must see every change alice makes:

  1. online, activity busy, note "in a meeting"
  2. online, activity away, note "out for lunch"
  3. offline (basic closed), note "gone home", subscription still active

With `--xcap ROOT` the server is expected to decide by pres-rules (privacy.default = confirm):
bob's subscription must first be pending and show nothing of alice; then alice's rules, written
over XCAP to ROOT/pres-rules/users/sip:alice@example.com/index, allow bob, and the steps above
follow.

With `--auth` the server has users (alice: wonderland, bob: builder) and challenges every
PUBLISH and SUBSCRIBE: each account carries its Digest credentials (no registration), and the
trace must show the challenge and the answered requests.

Prints `PASS ...` and exits 0 when all three were seen in time; otherwise prints what bob saw
and the SIP trace (PJSIP log level 5, kept in memory) and exits 1.

    python3 tests/clients/pjsua_presence.py --proxy 127.0.0.1:5060 --transport udp

Needs `pip install pjsua2-python` (binary wheel of PJSUA2). One PJSUA2 endpoint per process,
two transports on different local ports, one per account. Single-threaded: no worker
threads, everything runs inside `ep.libHandleEvents()`.
"""

import argparse
import os
import sys
import tempfile
import time
import urllib.request

try:
    import pjsua2 as pj
except ImportError as e:  # the Rust test checks for this before running us
    print(f"SKIP pjsua2 not importable: {e}", file=sys.stderr)
    sys.exit(2)

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"


class MemoryLog(pj.LogWriter):
    """Keeps every PJSIP log line (SIP messages included); echoes them when verbose."""

    def __init__(self, verbose):
        pj.LogWriter.__init__(self)
        self.lines = []
        self.verbose = verbose

    def write(self, entry):
        self.lines.append(entry.msg)
        if self.verbose:
            sys.stderr.write(entry.msg)
            if not entry.msg.endswith("\n"):
                sys.stderr.write("\n")


class Acc(pj.Account):
    def __init__(self, name):
        pj.Account.__init__(self)
        self.name = name


class Bud(pj.Buddy):
    def __init__(self):
        pj.Buddy.__init__(self)
        self.states = []  # every state change, for the failure report

    def onBuddyState(self):
        self.states.append(describe(self.getInfo()))


def describe(info):
    ps = info.presStatus
    return (
        f"status={status_name(ps.status)} text={ps.statusText!r} "
        f"activity={activity_name(ps.activity)} note={ps.note!r} "
        f"sub={info.subStateName} term={info.subTermCode} {info.subTermReason!r}"
    )


def status_name(s):
    return {
        pj.PJSUA_BUDDY_STATUS_UNKNOWN: "unknown",
        pj.PJSUA_BUDDY_STATUS_ONLINE: "online",
        pj.PJSUA_BUDDY_STATUS_OFFLINE: "offline",
    }.get(s, str(s))


def activity_name(a):
    return {
        pj.PJRPID_ACTIVITY_UNKNOWN: "unknown",
        pj.PJRPID_ACTIVITY_AWAY: "away",
        pj.PJRPID_ACTIVITY_BUSY: "busy",
    }.get(a, str(a))


def header(msg, name):
    """Value of the first `name:` header line in a logged SIP message, or ''."""
    for line in msg.splitlines():
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


ALLOW_BOB = """<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
  <cr:rule id="bob">
    <cr:conditions><cr:identity><cr:one id="sip:bob@example.com"/></cr:identity></cr:conditions>
    <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions>
    <cr:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-devices><pr:all-devices/></pr:provide-devices>
      <pr:provide-all-attributes/>
    </cr:transformations>
  </cr:rule>
</cr:ruleset>
"""


def put_rules(root):
    """alice's client allows bob: her pres-rules document, over XCAP."""
    req = urllib.request.Request(
        f"{root}/pres-rules/users/sip:alice@example.com/index",
        data=ALLOW_BOB.encode(),
        method="PUT",
        headers={"Content-Type": "application/auth-policy+xml"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status


def presence(status, activity, note):
    ps = pj.PresenceStatus()
    ps.status = status
    ps.activity = activity
    ps.note = note
    return ps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proxy", required=True, help="presenced's SIP address, HOST:PORT")
    ap.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole check")
    ap.add_argument("--verbose", action="store_true", help="echo the PJSIP log (level 5) live")
    ap.add_argument("--xcap", help="XCAP root: expect pending until rules written there allow bob")
    ap.add_argument("--auth", action="store_true", help="answer Digest challenges as alice and bob")
    args = ap.parse_args()

    ep = pj.Endpoint()
    # pjlib logs its start-up to stdout at level 5 before libInit() installs our writer;
    # keep those lines out of the output (they go to the failure trace instead).
    early = tempfile.TemporaryFile()
    saved = os.dup(1)
    sys.stdout.flush()
    os.dup2(early.fileno(), 1)
    try:
        ep.libCreate()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    early.seek(0)
    early_lines = early.read().decode(errors="replace").splitlines(keepends=True)
    log = MemoryLog(args.verbose)
    log.lines.extend(early_lines)
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = "pjsua2-presence-test"
    # Level 5 shows every SIP message; it goes to the in-memory writer only, printed on failure
    # (or live with --verbose). Nothing is written to the console by PJSIP itself.
    cfg.logConfig.level = 5
    cfg.logConfig.consoleLevel = 5
    cfg.logConfig.msgLogging = True
    cfg.logConfig.writer = log
    cfg.logConfig.decor = pj.PJ_LOG_HAS_TIME | pj.PJ_LOG_HAS_MICRO_SEC | pj.PJ_LOG_HAS_SENDER
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()

    tp_type = pj.PJSIP_TRANSPORT_UDP if args.transport == "udp" else pj.PJSIP_TRANSPORT_TCP
    tp_ids = []
    for _ in range(2):  # one transport (own local port) per account
        tcfg = pj.TransportConfig()
        tcfg.port = 0
        tcfg.boundAddress = "127.0.0.1"
        tp_ids.append(ep.transportCreate(tp_type, tcfg))
    ep.libStart()

    proxy = f"sip:{args.proxy};lr"
    if args.transport == "tcp":
        proxy += ";transport=tcp"

    passwords = {"alice": "wonderland", "bob": "builder"}

    def account(name, uri, tp, publish, priority):
        acfg = pj.AccountConfig()
        if args.auth:
            # realm "*": answer whatever realm presenced names (the user's domain)
            acfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", name, 0, passwords[name])
            )
        acfg.idUri = uri
        acfg.priority = priority
        acfg.regConfig.registerOnAdd = False
        acfg.regConfig.registrarUri = ""
        acfg.sipConfig.proxies.append(proxy)
        acfg.sipConfig.transportId = tp
        acfg.presConfig.publishEnabled = publish
        acfg.natConfig.sipOutboundUse = 0
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acc = Acc(name)
        acc.create(acfg, True)
        return acc

    # PJSUA sends a buddy's SUBSCRIBE from the account that pjsua_acc_find_for_outgoing()
    # picks for the buddy's URI: the highest-priority account of the same domain. Both are
    # @example.com, so bob gets the higher priority (and the check below makes sure).
    alice = account("alice", ALICE, tp_ids[0], True, 0)
    bob = account("bob", BOB, tp_ids[1], False, 10)

    buddy = Bud()
    bcfg = pj.BuddyConfig()
    bcfg.uri = ALICE
    bcfg.subscribe = True
    buddy.create(bob, bcfg)

    steps = [
        (
            "online/busy 'in a meeting'",
            presence(pj.PJSUA_BUDDY_STATUS_ONLINE, pj.PJRPID_ACTIVITY_BUSY, "in a meeting"),
            lambda i: i.presStatus.status == pj.PJSUA_BUDDY_STATUS_ONLINE
            and i.presStatus.activity == pj.PJRPID_ACTIVITY_BUSY
            and i.presStatus.note == "in a meeting",
        ),
        (
            "online/away 'out for lunch'",
            presence(pj.PJSUA_BUDDY_STATUS_ONLINE, pj.PJRPID_ACTIVITY_AWAY, "out for lunch"),
            lambda i: i.presStatus.status == pj.PJSUA_BUDDY_STATUS_ONLINE
            and i.presStatus.activity == pj.PJRPID_ACTIVITY_AWAY
            and i.presStatus.note == "out for lunch",
        ),
        (
            "offline 'gone home'",
            presence(pj.PJSUA_BUDDY_STATUS_OFFLINE, pj.PJRPID_ACTIVITY_UNKNOWN, "gone home"),
            # offline must come from a NOTIFY (basic closed), not from a dead subscription
            lambda i: i.presStatus.status == pj.PJSUA_BUDDY_STATUS_OFFLINE
            and i.subState == pj.PJSIP_EVSUB_STATE_ACTIVE
            and i.presStatus.note == "gone home",
        ),
    ]

    deadline = time.monotonic() + args.timeout
    seen = []
    failed = None
    if args.xcap:
        # confirm: bob waits, and sees nothing of what alice publishes meanwhile
        alice.setOnlineStatus(steps[0][1])
        pending = False
        while time.monotonic() < deadline and not pending:
            ep.libHandleEvents(20)
            pending = buddy.getInfo().subState == pj.PJSIP_EVSUB_STATE_PENDING
        # give a leaked NOTIFY of alice's publication time to arrive
        settle = time.monotonic() + 0.5
        while time.monotonic() < settle:
            ep.libHandleEvents(20)
        info = buddy.getInfo()
        if not pending:
            failed = "bob's subscription pending"
        elif info.presStatus.note or info.presStatus.status == pj.PJSUA_BUDDY_STATUS_ONLINE:
            failed = "nothing shown while pending"
        else:
            seen.append("pending")
            status = put_rules(args.xcap)
            if status not in (200, 201):
                failed = f"rules written (HTTP {status})"
            else:
                seen.append(f"rules allow bob (HTTP {status})")
    for name, status, check in steps:
        if failed is not None:
            break
        alice.setOnlineStatus(status)
        ok = False
        while time.monotonic() < deadline:
            ep.libHandleEvents(20)
            if check(buddy.getInfo()):
                ok = True
                break
        if not ok:
            failed = name
            break
        seen.append(name)

    # The subscription must be bob's (From and Contact bob), not alice's.
    subs = [m for m in log.lines if "\nSUBSCRIBE sip:alice@example.com SIP/2.0" in m]
    if failed is None:
        if not subs:
            failed = "SUBSCRIBE sent (none in the trace)"
        elif not all(
            "bob@example.com" in header(m, "From") and "sip:bob@" in header(m, "Contact")
            for m in subs
        ):
            failed = "SUBSCRIBE from bob (From and Contact)"

    if failed is None and args.auth:
        sent = [m for m in log.lines if "\nPUBLISH sip:alice@example.com SIP/2.0" in m
                or "\nSUBSCRIBE sip:alice@example.com SIP/2.0" in m]
        challenged = any("SIP/2.0 401 Unauthorized" in m for m in log.lines)
        answered = [m for m in sent if header(m, "Authorization").startswith("Digest ")]
        if not challenged:
            failed = "a 401 challenge (none in the trace)"
        elif not any("PUBLISH" in m for m in answered) or not any("SUBSCRIBE" in m for m in answered):
            failed = "PUBLISH and SUBSCRIBE sent with Digest credentials"
        else:
            seen.append(f"{len(answered)} requests with credentials")

    final = describe(buddy.getInfo())
    elapsed = args.timeout - (deadline - time.monotonic())
    # Tidy shutdown: unsubscribe, unpublish, let PJSIP send and finish those transactions.
    try:
        buddy.subscribePresence(False)
    except pj.Error:
        pass
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        ep.libHandleEvents(20)

    if failed is None:
        print(
            f"PASS pjsua2 {ep.libVersion().full} over {args.transport} via {args.proxy}: "
            f"bob saw alice {' -> '.join(seen)} in {elapsed:.2f}s"
        )
        code = 0
    else:
        print(f"FAIL over {args.transport} via {args.proxy}: bob did not see alice {failed!r}")
        print(f"seen in order: {seen}")
        print(f"bob's buddy now: {final}")
        print("buddy state changes:")
        for s in buddy.states:
            print(f"  {s}")
        print("---- PJSIP log (level 5) ----")
        for line in log.lines:
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
        code = 1
    sys.stdout.flush()
    # Destroying PJSUA2 objects from Python at interpreter exit is crash-prone; shut the
    # library down explicitly and leave without running Python's destructors.
    try:
        buddy_ref = buddy  # keep alive until libDestroy
        alice.shutdown()
        bob.shutdown()
        ep.libDestroy()
        del buddy_ref
    except Exception as e:  # noqa: BLE001 -- the verdict is already printed
        print(f"note: shutdown: {e}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
