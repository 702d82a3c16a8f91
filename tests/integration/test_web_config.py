#!/usr/bin/python3
"""--web.config.file (Prometheus' web.yml): TLS, client certificates, basic auth,
response headers and reloads, against the real tsdbd; and a real Prometheus 2.42 that
remote-writes and remote-reads over HTTPS with basic_auth and tls_config.

Certificates are made here with the openssl command line (a CA, a server certificate for
127.0.0.1, a client certificate from the CA and a self-signed one); bcrypt hashes are made
here with Python's crypt module (libcrypt). Checked:
  - basic auth on every endpoint (/metrics, health, queries, writes, unknown paths): no
    credentials, a wrong password and an unknown user get 401 with WWW-Authenticate:
    Basic; the configured headers are on every answer; the admin API stays off;
  - HTTPS: a client trusting the CA gets 200; plain HTTP on the port gets 400, never a
    2xx; a TLS 1.2 client is refused when min_version is TLS13;
  - RequireAndVerifyClientCert: a CA-signed client certificate passes, none or a
    self-signed one fails the handshake;
  - reloads: a changed file applies within seconds (new password, renewed certificate),
    an invalid one keeps the config in force, SIGHUP reloads; an invalid file at start
    exits 2.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402  (libcrypt's bcrypt; deprecated in Python, fine in 3.11)


def bcrypt(pw):
    return crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    """CA, server (127.0.0.1), client (from the CA) and a self-signed client."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=tsdbd test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "server.ext"), ("server2", "server.ext"), ("client", "client.ext")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name, "-keyout",
                name + ".key", "-out", name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", name + ".crt", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=stranger", "-keyout", "stranger.key", "-out", "stranger.crt", cwd=d)


class WebServer(tsdbtest.Server):
    """tsdbd with a web config: requests over HTTPS (trusting the test CA) and with
    basic auth when given."""

    def __init__(self, web, certs, user=None, https=True, client=None):
        self.web_path = None
        super().__init__()
        self.web_path = os.path.join(self.tmp, "web.yml")
        self.write_web(web)
        self.args += ["--web.config.file", self.web_path]
        self.certs, self.user, self.https, self.client = certs, user, https, client

    def write_web(self, text):
        tmp = self.web_path + ".new"
        with open(tmp, "w") as f:
            f.write(text.replace("CERTS", self.certs if hasattr(self, "certs") else ""))
        os.replace(tmp, self.web_path)

    def context(self, client=None, max_version=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.crt"))
        c = client or self.client
        if c:
            ctx.load_cert_chain(os.path.join(self.certs, c + ".crt"),
                                os.path.join(self.certs, c + ".key"))
        if max_version:
            ctx.maximum_version = max_version
        return ctx

    def get(self, path, params=None, timeout=30.0, user=None):
        return self.request("GET", path, params, timeout=timeout, user=user)

    def request(self, method, path, params=None, body=None, headers=None, timeout=30.0,
                user=None, ctx=None):
        user = user if user is not None else self.user
        q = tsdbtest.encode_params(params)
        h = dict(headers or {})
        if user:
            h["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
        if self.https:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx or self.context())
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path + ("?" + q if q else ""), body=body, headers=h)
            r = conn.getresponse()
            return tsdbtest.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()


class WebConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="web-certs-")
        make_certs(cls.certs)
        cls.h_alice = bcrypt("s3cret")
        cls.h_alice2 = bcrypt("n3w")
        cls.h_bob = bcrypt("hunter2")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()

    def server(self, web, **kw):
        s = WebServer(web, self.certs, **kw)
        self.servers.append(s)
        return s.start()

    def tls_web(self, extra=""):
        return ("tls_server_config:\n  cert_file: %s/server.crt\n  key_file: %s/server.key\n%s"
                % (self.certs, self.certs, extra))

    def test_basic_auth_everywhere(self):
        web = ("http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
               "    Content-Security-Policy: default-src 'none'\n"
               "basic_auth_users:\n  alice: %s\n  bob: %s\n" % (self.h_alice, self.h_bob))
        s = self.server(web, user="alice:s3cret", https=False)
        body = tsdbtest.write_request([({"__name__": "m", "job": "j"}, [(tsdbtest.now_ms(), 1.0)])])
        rw = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
        for method, path, params, data, hdrs in (
                ("GET", "/-/healthy", None, None, None), ("GET", "/-/ready", None, None, None),
                ("GET", "/metrics", None, None, None),
                ("GET", "/api/v1/query", {"query": "1"}, None, None),
                ("GET", "/api/v1/labels", None, None, None),
                ("POST", "/api/v1/write", None, body, rw),
                ("GET", "/no/such/path", None, None, None),
                ("POST", "/grafana/metrics", None, b"{}", {"Content-Type": "application/json"}),
                ("POST", "/grafana/query", None, json.dumps(
                    {"range": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"},
                     "targets": [{"refId": "A", "target": "m"}]}).encode(),
                 {"Content-Type": "application/json"}),
                ("POST", "/api/v1/admin/tsdb/snapshot", None, b"", None)):
            for user in ("", "alice:wrong", "carol:s3cret", "bob:s3cret", "alice:"):
                r = s.request(method, path, params, data, hdrs, user=user)
                self.assertEqual(r.status, 401, (path, user, r))
                self.assertEqual(r.headers.get("www-authenticate"), "Basic", path)
                self.assertEqual(r.headers.get("x-frame-options"), "deny", path)
                self.assertEqual(r.text, "Unauthorized\n")
            r = s.request(method, path, params, data, hdrs)
            want = {"/api/v1/write": 204, "/no/such/path": 404,
                    "/api/v1/admin/tsdb/snapshot": 404}.get(path, 200)
            self.assertEqual(r.status, want, (path, r))
            self.assertEqual(r.headers.get("content-security-policy"), "default-src 'none'")
        self.assertEqual(s.request("GET", "/-/healthy", user="bob:hunter2").status, 200)
        # a malformed header is a 401, not a 400 or a crash
        for bad in ("Basic", "Basic !!!", "Bearer abc", "Basic " + "A" * 5000):
            r = s.request("GET", "/-/healthy", headers={"Authorization": bad}, user="")
            self.assertEqual(r.status, 401, bad)

    def test_https_and_plain_http_refused(self):
        s = self.server(self.tls_web("  min_version: TLS13\n") +
                        "basic_auth_users:\n  alice: %s\n" % self.h_alice, user="alice:s3cret")
        r = s.get("/api/v1/query", {"query": "1+1"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["result"][1], "2")
        # plain HTTP on the TLS port: Go's answer, no 2xx
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while True:
                b = c.recv(4096)
                if not b:
                    break
                got += b
        self.assertTrue(got.startswith(b"HTTP/1.0 400 Bad Request"), got)
        self.assertIn(b"Client sent an HTTP request to an HTTPS server", got)
        # TLS 1.2 only: refused (min_version TLS13)
        with self.assertRaises(ssl.SSLError):
            s.request("GET", "/-/healthy", ctx=s.context(max_version=ssl.TLSVersion.TLSv1_2))
        # a client that does not trust the CA
        with self.assertRaises(ssl.SSLError):
            s.request("GET", "/-/healthy", ctx=ssl.create_default_context())
        self.assertEqual(s.get("/-/healthy").status, 200)  # still serving
        m = peers.parse_metrics(s.get("/metrics").text)
        self.assertGreaterEqual(peers.metric(m, "tsdb_http_tls_handshake_failures_total"), 2)

    def test_client_certificates(self):
        s = self.server(self.tls_web("  client_auth_type: RequireAndVerifyClientCert\n"
                                     "  client_ca_file: %s/ca.crt\n" % self.certs), client="client")
        self.assertEqual(s.get("/-/healthy").status, 200)
        for bad in (None, "stranger"):
            ctx = s.context(client=bad) if bad else ssl.create_default_context(
                cafile=os.path.join(self.certs, "ca.crt"))
            with self.assertRaises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
                s.request("GET", "/-/healthy", ctx=ctx)
        self.assertEqual(s.get("/-/healthy").status, 200)

    def test_reloads(self):
        s = self.server(self.tls_web() + "basic_auth_users:\n  alice: %s\n" % self.h_alice,
                        user="alice:s3cret")
        self.assertEqual(s.get("/-/healthy").status, 200)

        def serial():
            with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
                with s.context().wrap_socket(raw, server_hostname="127.0.0.1") as t:
                    return t.getpeercert()["serialNumber"]

        def wait_for(pred, what):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if pred():
                    return
                time.sleep(0.2)
            self.fail("%s: not within 15 s\n%s" % (what, s.log_tail()))
        first = serial()
        # a new password, picked up from the file change
        s.write_web(self.tls_web() + "basic_auth_users:\n  alice: %s\n" % self.h_alice2)
        wait_for(lambda: s.get("/-/healthy", user="alice:n3w").status == 200, "new password")
        self.assertEqual(s.get("/-/healthy").status, 401)
        # an invalid file: logged, the config in force stays
        s.write_web("basic_auth_users:\n  alice: not-a-hash\n")
        wait_for(lambda: "web config not reloaded" in s.log_tail(), "invalid file logged")
        self.assertEqual(s.get("/-/healthy", user="alice:n3w").status, 200)
        # a renewed certificate (new files named in the file), applied by SIGHUP
        s.write_web("tls_server_config:\n  cert_file: %s/server2.crt\n  key_file: %s/server2.key\n"
                    "basic_auth_users:\n  alice: %s\n" % (self.certs, self.certs, self.h_alice))
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: serial() != first, "new certificate")
        self.assertEqual(s.get("/-/healthy").status, 200)
        # turning TLS off needs a restart: refused, the config in force stays
        s.write_web("basic_auth_users:\n  alice: %s\n" % self.h_bob)
        wait_for(lambda: "needs a restart" in s.log_tail(), "TLS off refused")
        self.assertEqual(s.get("/-/healthy").status, 200)

    def test_invalid_file_at_start(self):
        for web, why in (("tls_server_config:\n  cert_file: x\n", "missing key_file"),
                         ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
                          "cannot load cert_file"),
                         ("basic_auth_users:\n  a: b\n", "not a bcrypt hash"),
                         ("what: 1\n", "field what not found")):
            s = WebServer(web, self.certs)
            self.servers.append(s)
            s.spawn()
            rc = s.proc.wait(timeout=30)
            self.assertEqual(rc, 2, web)
            self.assertIn(why, s.log_tail())
        s = tsdbtest.Server(["--web.config.file", "/nonexistent/web.yml"])
        self.servers.append(s)
        s.spawn()
        self.assertEqual(s.proc.wait(timeout=30), 2)

    def test_prometheus_over_https_with_basic_auth(self):
        s = self.server(self.tls_web() + "basic_auth_users:\n  prom: %s\n" % self.h_alice,
                        user="prom:s3cret")
        now = tsdbtest.now_ms()
        # a series only tsdbd has: Prometheus must read it back over HTTPS
        r = s.post("/api/v1/import", (json.dumps({"metric": {"__name__": "only_in_tsdbd", "k": "v"},
                                                  "values": [42.0], "timestamps": [now - 60000]}) + "\n").encode())
        self.assertEqual(r.status, 204, r)
        auth = ("    basic_auth:\n      username: prom\n      password: s3cret\n"
                "    tls_config:\n      ca_file: %s/ca.crt\n" % self.certs)
        url = "https://127.0.0.1:%d" % s.port
        cfg = ("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
               "scrape_configs:\n  - job_name: prometheus\n    static_configs:\n"
               "      - targets: ['127.0.0.1:{PROM_PORT}']\n"
               "remote_write:\n  - url: %s/api/v1/write\n%s"
               "    queue_config:\n      batch_send_deadline: 1s\n"
               "remote_read:\n  - url: %s/api/v1/read\n    read_recent: true\n%s"
               % (url, auth, url, auth))
        prom = peers.Prometheus(cfg)
        try:
            prom.start()
            deadline = time.monotonic() + 60
            got = []
            while time.monotonic() < deadline and not got:
                time.sleep(1)
                r = s.get("/api/v1/query", {"query": 'up{job="prometheus"}'})
                self.assertEqual(r.status, 200, r)
                got = r.json()["data"]["result"]
            self.assertTrue(got, "no sample arrived through remote write over HTTPS:\n" + prom.log_tail())
            data = prom.api("/api/v1/query", query="only_in_tsdbd", time="%.3f" % (now / 1000))
            self.assertEqual([x["value"][1] for x in data["result"]], ["42"], data)
            self.assertEqual(data["result"][0]["metric"], {"__name__": "only_in_tsdbd", "k": "v"})
            sent = prom.api("/api/v1/query", query="prometheus_remote_storage_samples_failed_total")
            self.assertTrue(all(float(x["value"][1]) == 0 for x in sent["result"]), sent)
        finally:
            prom.cleanup()


if __name__ == "__main__":
    peers.run_main()
