#!/usr/bin/env python3
"""An XCAP client the way AG Projects' xcaplib (OpenXCAP's test suite, SIP SIMPLE SDK clients
such as Blink) is one: Python's urllib.request with its own HTTPDigestAuthHandler, request URLs
built as xcaplib's get_path builds them (node selectors raw, `"`, `[` and `]` unescaped, after
`/~~`), Content-Type of a node PUT chosen from the selector as xcaplib does, ETags sent as
If-Match / If-None-Match.

The caller drives it line by line on stdin, one request per line, tab-separated:

    METHOD  APP  NODE  IF-MATCH  IF-NONE-MATCH  CONTENT-TYPE  BODY-HEX

with `-` for an absent field. APP `/` names the XCAP root itself; NODE `-` the whole
document; CONTENT-TYPE `-` on a PUT lets xcaplib's rule pick it (none for a document, which
urllib then sends as its default). Each request gets one line on stdout:

    STATUS  CONTENT-TYPE  ETAG  ALLOW  BODY-HEX

    python3 tests/clients/xcap_urllib.py ROOT XUI USERNAME REALM PASSWORD

Only the standard library is used.
"""

import sys
import urllib.error
import urllib.request


def get_path(xui, application, node, filename="index"):
    """xcaplib.client.get_path: the node selector is appended raw after '/~~'."""
    path = "/%s/users/%s/%s" % (application, xui, filename)
    if node:
        if path[-1:] != "/":
            path += "/"
        path += "~~" + node
    return path


def content_type_for_node(node):
    """xcaplib.client.Resource.get_content_type_for_node."""
    if node is None:
        return None
    if node.endswith("namespace::*"):
        return "application/xcap-ns+xml"
    if node[node.rindex("/") + 1:][:1] == "@":
        return "application/xcap-att+xml"
    return "application/xcap-el+xml"


class Client:
    """xcaplib.client.XCAPClient with its httpclient.HTTPClient: one opener, digest
    credentials for the user part as username in the SIP domain as realm."""

    def __init__(self, root, sip_address, password):
        self.xui = sip_address
        address = sip_address[4:] if sip_address.startswith("sip:") else sip_address
        username, realm = address.split("@", 1)
        self.base_url = root.rstrip("/") + "/"
        passwords = urllib.request.HTTPPasswordMgr()
        passwords.add_password(realm, self.base_url, username, password)
        self.digest = urllib.request.HTTPDigestAuthHandler(passwords)
        self.opener = urllib.request.build_opener(self.digest)

    def request(self, method, path, data=None, headers=None, etag=None, etagnot=None):
        headers = dict(headers or {})
        headers.setdefault("User-Agent", "python-xcaplib/urllib")
        if etag is not None:
            headers["If-Match"] = '"%s"' % etag if etag != "*" else "*"
        if etagnot is not None:
            headers["If-None-Match"] = '"%s"' % etagnot if etagnot != "*" else "*"
        if path[:1] == "/":
            path = path[1:]
        req = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with self.opener.open(req, timeout=20) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            # As xcaplib does: a failed exchange must not count against the next one.
            self.digest.reset_retry_count()
            body = e.read() if e.fp is not None else b""
            return e.code, e.headers, body


def field(v):
    return None if v == "-" else v


def main():
    root, xui, password = sys.argv[1:4]
    client = Client(root, xui, password)
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        method, app, node, if_match, if_none, ctype, body = (
            field(v) for v in line.split("\t")
        )
        path = "" if app == "/" else get_path(xui, app, node)
        data = bytes.fromhex(body) if body is not None else None
        headers = {}
        if method == "PUT":
            ctype = ctype or content_type_for_node(node)
        if ctype is not None:
            headers["Content-Type"] = ctype
        status, h, got = client.request(method, path, data, headers, if_match, if_none)
        etag = h.get("ETag")
        if etag and len(etag) > 1 and etag[0] == etag[-1] == '"':
            etag = etag[1:-1]  # xcaplib's HTTPResponse.etag
        out = [
            str(status),
            h.get("Content-Type") or "-",
            etag or "-",
            h.get("Allow") or "-",
            got.hex() or "-",
        ]
        print("\t".join(out), flush=True)


if __name__ == "__main__":
    main()
