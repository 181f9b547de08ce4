"""End-to-end test harness: starts inferd on free ports against a model
repository and hands tests a small client.

The binary comes from $INFERD_BUILD (default: build/) so that the same tests
run against the normal and the sanitizer builds. Every server the tests start
is stopped with SIGTERM at the end and must exit 0, and its log must be free
of sanitizer reports.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("INFERD_BUILD", "build"))
BINARY = os.path.join(BUILD, "inferd")
BACKENDS = os.path.join(BUILD, "backends")
EXAMPLES = os.path.join(ROOT, "examples", "models")
TEST_MODELS = os.path.join(ROOT, "tests", "models")
# Sanitizer builds run several times slower.
SLOW = 4 if "san" in os.path.basename(BUILD) else 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One inferd process."""

    def __init__(self, repo, args=(), backends=True):
        self.repo = repo
        self.port = free_port()
        self.metrics_port = free_port()
        self.grpc_port = free_port()
        self.log_path = tempfile.mktemp(prefix="inferd-", suffix=".log")
        cmd = [BINARY, "--model-repository", repo, "--host", "127.0.0.1",
               "--http-port", str(self.port), "--metrics-port", str(self.metrics_port),
               "--grpc-port", str(self.grpc_port),
               "--http-threads", "2"]
        if backends:
            cmd += ["--backend-directory", BACKENDS]
        cmd += list(args)
        self.log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.session = requests.Session()
        self.wait_live()

    def wait_live(self, timeout=20.0):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"inferd exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if requests.get(self.url + "/v2/health/live", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("inferd did not come up:\n" + self.log_text())

    def wait_ready(self, timeout=60.0):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.get("/v2/health/ready").status_code == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("inferd did not become ready:\n" + self.log_text())

    def wait_loaded(self, timeout=60.0):
        """Waits until the repository has been loaded (ready or not)."""
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if "server is " in self.log_text():
                return
            time.sleep(0.05)
        raise RuntimeError("inferd did not finish loading:\n" + self.log_text())

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def get(self, path, **kw):
        return self.session.get(self.url + path, timeout=30 * SLOW, **kw)

    def post(self, path, **kw):
        return self.session.post(self.url + path, timeout=30 * SLOW, **kw)

    def infer(self, model, body, version=None, **kw):
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return self.post(path, data=body, **kw)

    def raw(self, data, read_timeout=5.0, shutdown=True):
        """Sends raw bytes on a fresh connection and returns all it answers
        until the server closes or goes quiet."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout * SLOW) as s:
            s.sendall(data)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
            chunks = []
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    chunks.append(c)
            except socket.timeout:
                pass
            return b"".join(chunks)

    def stop(self, expect_code=0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("inferd did not stop on SIGTERM:\n" + self.log_text())
        self.log.close()
        text = self.log_text()
        assert "Sanitizer" not in text and "runtime error" not in text, text
        assert self.proc.returncode == expect_code, f"exit {self.proc.returncode}:\n{text}"
        os.unlink(self.log_path)


def make_repo(*model_dirs, extra=None):
    """A temporary repository holding links to the given model folders, plus
    folders written from `extra`: {name: {relative path: bytes or str}}."""
    root = tempfile.mkdtemp(prefix="inferd-repo-")
    for d in model_dirs:
        os.symlink(d, os.path.join(root, os.path.basename(d)))
    for name, files in (extra or {}).items():
        for rel, content in files.items():
            path = os.path.join(root, name, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(path, mode) as f:
                f.write(content)
        os.makedirs(os.path.join(root, name), exist_ok=True)
    return root


@pytest.fixture(scope="session")
def server():
    """The example models and the test models, served once for the session."""
    dirs = [os.path.join(EXAMPLES, d) for d in sorted(os.listdir(EXAMPLES))]
    dirs += [os.path.join(TEST_MODELS, d) for d in sorted(os.listdir(TEST_MODELS))
             if os.path.isdir(os.path.join(TEST_MODELS, d))]
    root = make_repo(*dirs)
    srv = Server(root)
    srv.wait_ready()
    yield srv
    srv.stop()
    shutil.rmtree(root)


@pytest.fixture
def start_server():
    """Starts extra servers for one test; stops them after it."""
    started = []

    def start(repo, args=(), **kw):
        srv = Server(repo, args, **kw)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
