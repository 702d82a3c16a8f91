#!/usr/bin/python3
"""The deployment files run what they say:

- deploy/systemd/tsdbd.service passes `systemd-analyze verify`, and its ExecStart
  (paths moved into a temporary directory) starts a tsdbd that becomes ready;
- deploy/k8s/tsdbd.yaml: the StatefulSet's args, with the ConfigMap's web.yml, start a
  tsdbd whose readiness and liveness probe paths answer 200 on the probed port; the
  Service targets that port; the pod runs as non-root on a read-only root with the data
  volume at --data-dir;
- Dockerfile: two stages built with the README's scripts, a non-root user, /data as a
  volume, and a runtime stage that installs the package of every shared library
  tsdbd and tsdbctl link; its HEALTHCHECK command, run against a live tsdbd, passes (and
  fails against a closed port). No container engine runs here, so the image itself is
  not built.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

DEPLOY = os.path.join(tsdbtest.SRCDIR, "deploy")
TSDBD = os.path.join(tsdbtest.BUILD, "tsdbd")
TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")


class DeployTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tsdb-deploy-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def run_tsdbd(self, argv):
        """Starts tsdbd with argv (flags only) on 127.0.0.1; returns the server."""
        srv = tsdbtest.Server(args=argv)
        self.addCleanup(srv.cleanup)
        return srv.start()

    def test_systemd_unit(self):
        unit = os.path.join(DEPLOY, "systemd", "tsdbd.service")
        with open(unit) as f:
            text = f.read()
        exec_line = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
        argv = shlex.split(exec_line)
        self.assertEqual(argv[0], "/usr/local/bin/tsdbd")
        # systemd-analyze verify wants the binary where ExecStart says: point it at ours.
        local = os.path.join(self.tmp, "tsdbd.service")
        with open(local, "w") as f:
            f.write(text.replace(argv[0], TSDBD))
        p = subprocess.run(["systemd-analyze", "verify", local], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        for key in ("DynamicUser=yes", "StateDirectory=tsdbd", "NoNewPrivileges=yes",
                    "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertIn(key, text)
        # The flags start a tsdbd (data dir and address moved into the test's reach).
        flags = argv[1:]
        self.assertEqual(flags[flags.index("--data-dir") + 1], "/var/lib/tsdbd")
        i = flags.index("--data-dir")
        del flags[i:i + 2]
        i = flags.index("--listen")
        self.assertEqual(flags[i + 1], ":9201")
        del flags[i:i + 2]
        srv = self.run_tsdbd(flags)
        self.assertEqual(srv.get("/-/ready").status, 200)

    def test_kubernetes_manifests(self):
        with open(os.path.join(DEPLOY, "k8s", "tsdbd.yaml")) as f:
            docs = {d["kind"]: d for d in yaml.safe_load_all(f) if d}
        self.assertEqual(sorted(docs), ["ConfigMap", "Service", "StatefulSet"])
        sts = docs["StatefulSet"]["spec"]
        pod = sts["template"]["spec"]
        c = pod["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(docs["Service"]["spec"]["ports"][0]["targetPort"], "http")
        self.assertEqual(pod["securityContext"]["runAsNonRoot"], True)
        self.assertEqual(c["securityContext"]["readOnlyRootFilesystem"], True)
        self.assertIn("memory", c["resources"]["requests"])
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        self.assertEqual(sts["volumeClaimTemplates"][0]["metadata"]["name"], "data")
        # $(VAR) in args: Kubernetes expands it from the container's env, here from the
        # ConfigMap's keys.
        cm = docs["ConfigMap"]["data"]
        env = {e["name"]: cm[e["valueFrom"]["configMapKeyRef"]["key"]] for e in c["env"]}
        for e in c["env"]:
            self.assertEqual(e["valueFrom"]["configMapKeyRef"]["name"], docs["ConfigMap"]["metadata"]["name"])
        expanded = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in c["args"]]
        args = dict(a[2:].split("=", 1) for a in expanded)
        self.assertEqual(args["retention"], cm["retention"])
        self.assertEqual(args["data-dir"], mounts["data"])
        self.assertEqual(args["listen"], ":%d" % ports["http"])
        cfg_dir = mounts["config"]
        self.assertTrue(args["web.config.file"].startswith(cfg_dir + "/"))
        # Start tsdbd as the pod would: the ConfigMap's files in place of the mount.
        local_cfg = os.path.join(self.tmp, "config")
        os.makedirs(local_cfg)
        for name, content in docs["ConfigMap"]["data"].items():
            with open(os.path.join(local_cfg, name), "w") as f:
                f.write(content)

        argv = []
        for k, v in args.items():
            if k in ("data-dir", "listen"):
                continue  # tsdbtest.Server sets both
            argv.append("--%s=%s" % (k, v.replace(cfg_dir, local_cfg)))
        srv = self.run_tsdbd(argv)
        for probe in ("readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            self.assertEqual(get["port"], "http")
            r = srv.get(get["path"])
            self.assertEqual(r.status, 200, (probe, r.text))
        # The ConfigMap's web.yml is in force: its headers come back; so are its flags.
        r = srv.get("/-/healthy")
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff")
        flags = srv.get("/api/v1/status/flags").json()["data"]
        self.assertEqual(flags["retention"], cm["retention"])
        self.assertEqual(flags["out-of-order-window"], cm["out-of-order-window"])

    def test_dockerfile(self):
        with open(os.path.join(tsdbtest.SRCDIR, "Dockerfile")) as f:
            text = f.read()
        froms = re.findall(r"^FROM (\S+)", text, re.M)
        self.assertEqual(froms, ["debian:12", "debian:12-slim"])
        self.assertIn("scripts/deps.sh build", text)
        self.assertIn("scripts/build.sh release", text)
        self.assertIn("cmake --install build/release", text)
        user = re.search(r"^USER (\S+)", text, re.M).group(1)
        self.assertNotIn(user.split(":")[0], ("root", "0"))
        self.assertRegex(text, r"(?m)^VOLUME /data$")
        self.assertIn('"--data-dir=/data"', text)
        # Every shared library the programs link comes from a package the runtime stage
        # installs (libc's own are in every Debian image).
        runtime = text.split("FROM debian:12-slim", 1)[1]
        install = re.search(r"apt-get install[^\n]*\n((?:.*\\\n)*)", runtime).group(0)
        pkgs = set(re.findall(r"\b(lib[a-z0-9.+-]+|zlib1g)\b", install))
        needed = set()
        for b in (TSDBD, TSDBCTL):
            out = subprocess.run(["readelf", "-d", b], stdout=subprocess.PIPE, text=True, check=True).stdout
            needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", out))
        ldd = {}
        for b in (TSDBD, TSDBCTL):
            out = subprocess.run(["ldd", b], stdout=subprocess.PIPE, text=True, check=True).stdout
            for m in re.finditer(r"^\s*(\S+) => (\S+)", out, re.M):
                ldd[m.group(1)] = m.group(2)
        for so in sorted(needed):
            if so.startswith(("libc.so", "libm.so", "libpthread.so", "libdl.so", "ld-linux")):
                continue
            path = os.path.realpath(ldd[so])
            owner = None
            # Merged /usr: dpkg may have recorded the file under /lib.
            for cand in (ldd[so], path, re.sub(r"^/usr/lib/", "/lib/", path), re.sub(r"^/usr/lib/", "/lib/", ldd[so])):
                r = subprocess.run(["dpkg", "-S", cand], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True)
                if r.returncode == 0:
                    owner = r.stdout.split(":")[0]
                    break
            self.assertIsNotNone(owner, "no package owns %s" % path)
            self.assertIn(owner, pkgs, "%s (%s) comes from %s, which the image lacks" % (so, path, owner))
        # The HEALTHCHECK command passes against a live tsdbd and fails on a closed port.
        cmd = re.search(r"^\s*CMD (bash -c '.*')$", text.split("HEALTHCHECK", 1)[1], re.M).group(1)
        srv = self.run_tsdbd([])
        ok = subprocess.run(["/bin/sh", "-c", cmd.replace("/9201", "/%d" % srv.port)], timeout=10)
        self.assertEqual(ok.returncode, 0)
        bad = subprocess.run(["/bin/sh", "-c", cmd.replace("/9201", "/%d" % peers.free_port())],
                             stderr=subprocess.DEVNULL, timeout=10)
        self.assertNotEqual(bad.returncode, 0)


if __name__ == "__main__":
    peers.run_main()
