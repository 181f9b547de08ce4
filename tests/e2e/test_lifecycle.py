"""Process life: command line, graceful stop on SIGTERM, metrics."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

from conftest import BINARY, EXAMPLES, SLOW, make_repo

SLOW_IDENTITY = """
backend: "identity"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
parameters { key: "delay_ms" value: { string_value: "800" } }
"""


def test_help_and_version():
    out = subprocess.run([BINARY, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--model-repository" in out.stdout
    out = subprocess.run([BINARY, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and re.match(r"inferd \d+\.\d+\.\d+", out.stdout)
    out = subprocess.run([BINARY], capture_output=True, text=True)
    assert out.returncode == 2 and "--model-repository" in out.stderr
    out = subprocess.run([BINARY, "--model-repository", "x", "--http-port", "http"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--http-port" in out.stderr


def test_sigterm_finishes_requests_in_flight(start_server):
    root = make_repo(extra={"slow": {"config.pbtxt": SLOW_IDENTITY, "1/.keep": ""}})
    srv = start_server(root)
    srv.wait_ready()
    result = {}

    def call():
        result["r"] = srv.infer("slow", {"inputs": [{"name": "INPUT0", "shape": [2],
                                                     "datatype": "FP32", "data": [1, 2]}]})

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.3 * SLOW)
    srv.proc.send_signal(signal.SIGTERM)
    t.join()
    r = result["r"]
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1, 2]
    assert srv.proc.wait(timeout=10 * SLOW) == 0
    assert "stopped" in srv.log_text()


def test_busy_poll(start_server):
    """--busy-poll-us: the loop still answers requests, hands work to and from
    model threads, runs its timers (an idle connection is closed) and stops."""
    out = subprocess.run([BINARY, "--model-repository", "x", "--busy-poll-us", "-5"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--busy-poll-us" in out.stderr
    root = make_repo(os.path.join(EXAMPLES, "digits_mlp"),
                     extra={"slow": {"config.pbtxt": SLOW_IDENTITY, "1/.keep": ""}})
    srv = start_server(root, ["--busy-poll-us", "200", "--http-idle-timeout", "0.5"])
    srv.wait_ready()
    for i in range(50):
        r = srv.infer("slow" if i == 0 else "digits_mlp", {"inputs": [
            {"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [7]}]
            if i == 0 else [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                             "data": [float(i % 16)] * 64}]})
        assert r.status_code == 200, r.text
    idle = socket.create_connection(("127.0.0.1", srv.port))
    idle.settimeout(10 * SLOW)
    start = time.time()
    assert idle.recv(1) == b""
    assert time.time() - start < 5 * SLOW
    idle.close()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10 * SLOW) == 0


def sleeps(pid):
    """How many times the process's threads have gone to sleep (voluntary
    context switches; a thread that yields while it polls is not counted)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total


def test_busy_poll_adapts(start_server):
    """The polling window grows while requests come closer together than
    --busy-poll-us (the network thread stops sleeping between them) and
    shrinks to nothing while they come further apart (it sleeps each time)."""
    srv = start_server(make_repo(), ["--busy-poll-us", "20000", "--http-threads", "1"])
    srv.wait_ready()

    def cpu_seconds():
        with open(f"/proc/{srv.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def requests_every(gap, n):
        before, cpu = sleeps(srv.proc.pid), cpu_seconds()
        for _ in range(n):
            assert srv.get("/v2/health/live").status_code == 200
            time.sleep(gap)
        requests_every.cpu = cpu_seconds() - cpu
        return sleeps(srv.proc.pid) - before

    requests_every(0.001, 50)  # the window grows to 20 ms
    dense = requests_every(0.001, 300)
    assert dense < 300 / 3, f"{dense} sleeps for 300 requests 1 ms apart"
    requests_every(0.06, 12)  # 60 ms apart: the window halves each time, to 0
    sparse = requests_every(0.06, 10)
    assert sparse >= 10, f"{sparse} sleeps for 10 requests 60 ms apart"
    # a window that stayed at 20 ms would have polled for 200 ms
    assert requests_every.cpu < 0.1, f"{requests_every.cpu:.3f} s of CPU for 10 sparse requests"
    r = srv.get("/v2/health/live")
    assert r.status_code == 200


def test_idle_connections_closed_on_sigterm(start_server):
    root = make_repo(extra={"slow": {"config.pbtxt": SLOW_IDENTITY, "1/.keep": ""}})
    srv = start_server(root)
    idle = socket.create_connection(("127.0.0.1", srv.port))
    start = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10 * SLOW) == 0
    assert time.time() - start < 5 * SLOW
    assert idle.recv(1) == b""
    idle.close()


def test_metrics(server):
    good = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                        "data": [0.0] * 64}]}
    for _ in range(3):
        r = server.infer("digits_mlp", good)
        assert r.status_code == 200, r.text
    server.infer("digits_mlp", {"inputs": []})
    r = server.session.get(server.metrics_url)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    labels = '{model="digits_mlp",version="1"}'

    def value(name):
        m = re.search(re.escape(name + labels) + r" (\S+)", text)
        assert m, name
        return float(m.group(1))

    assert value("inferd_inference_request_success_total") >= 3
    assert value("inferd_inference_request_failure_total") >= 1
    assert value("inferd_inference_count_total") >= 3
    assert value("inferd_inference_compute_infer_duration_us_total") > 0
    assert value("inferd_inference_requests_in_flight") == 0
    assert value("inferd_model_memory_bytes") > 0
    assert re.search(r'inferd_inference_request_duration_seconds_bucket\{model="digits_mlp",'
                     r'version="1",le="\+Inf"\} \d+', text)
    assert re.search(r"inferd_process_resident_memory_bytes \d+", text)
    assert "# TYPE inferd_inference_request_duration_seconds histogram" in text
    assert server.session.get(server.metrics_url.replace("/metrics", "/x")).status_code == 404
