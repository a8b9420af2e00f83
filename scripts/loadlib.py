"""What scripts/overload, scripts/cluster-test and scripts/soak share: the machine's description, a
`zebra serve` started and awaited, its RSS and /metrics, percentiles, and one request with its outcome
classified the same way everywhere (a 200 stream counts as complete only when it ends with [DONE] and
carries no error event). Standard library only.
"""
import http.client, json, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "gemma-3-270m-Q4_K_M.gguf")
BINARY = os.path.join(ROOT, ".build", "release", "zebra")
WORDS = ("the zebra walked across the savanna counting stripes and thinking about attention windows while "
         "a river of tokens flowed past old acacia trees under a wide evening sky").split()


def cpu_description():
    """'AMD EPYC, CPUID family 25 model 17, 2 cores' from /proc/cpuinfo."""
    info = {}
    for line in open("/proc/cpuinfo"):
        k, _, v = line.partition(":")
        k = k.strip()
        if k in ("model name", "cpu family", "model") and k not in info:
            info[k] = v.strip()
        if not line.strip() and info:
            break
    return (f"{info.get('model name', '?')}, CPUID family {info.get('cpu family', '?')} model {info.get('model', '?')}, "
            f"{os.cpu_count()} cores")


class CPUPressure:
    """The share of wall time in which some runnable task waited for a CPU (Linux PSI, /proc/pressure/cpu)
    since construction: this run's own threads and, on a shared machine, the neighbours' load."""

    def __init__(self):
        self.t0, self.s0 = time.time(), self._stall()

    @staticmethod
    def _stall():
        try:
            for line in open("/proc/pressure/cpu"):
                if line.startswith("some"):
                    return int(line.split("total=")[1]) / 1e6
        except OSError:
            pass
        return None

    def describe(self):
        s = self._stall()
        if s is None or self.s0 is None:
            return "CPU pressure: not available"
        return f"CPU pressure (PSI some): {100 * (s - self.s0) / max(1e-9, time.time() - self.t0):.0f}% of the run"


def rss_mib(pid):
    """Resident memory of a process in MiB (nan once it is gone)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def metrics(host, port, timeout=10):
    """/metrics as {'name{labels}': value}."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    c.request("GET", "/metrics")
    out = {}
    for line in c.getresponse().read().decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def live_kv_bytes(m):
    """KV bytes held by live sequences (allocated minus the prefix cache's evictable blocks)."""
    return m.get("zebra_kv_cache_allocated_bytes", 0) - m.get("zebra_kv_cache_cached_bytes", 0)


def healthy(host, port, timeout=2):
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request("GET", "/health")
        return c.getresponse().status == 200
    except OSError:
        return False


def start_server(binary, port, args, log_path=None, prefix=(), host="127.0.0.1", timeout=300):
    """Starts `zebra serve` (optionally under `prefix`, e.g. `ip netns exec NS`) and waits for /health."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    cmd = list(prefix) + [binary, "serve", "--model", MODEL, "--port", str(port)] + list(args)
    p = subprocess.Popen(cmd, stdout=log, stderr=log)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if p.poll() is not None:
            sys.exit(f"zebra serve exited with {p.returncode} (port {port} taken?); command: {' '.join(cmd)}")
        if healthy(host, port):
            return p
        time.sleep(0.2)
    p.kill()
    sys.exit(f"zebra serve on {host}:{port} did not become ready within {timeout} s")


def stop_server(p, timeout=30):
    """SIGTERM (the graceful drain), then SIGKILL if it takes longer than `timeout`. Returns the exit code."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def pct(xs, p):
    """The p-th percentile (nearest rank) of xs; nan when empty."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


class Outcome:
    """One request's fate. `ok`: a 200 that completed (streams: [DONE] and no error event). Times are
    seconds from sending: `t_status` when the status line arrived, `token_times` each token-bearing event."""

    def __init__(self):
        self.status = None          # HTTP status, None if the connection failed before one arrived
        self.retry_after = None     # the Retry-After header, if any
        self.t_status = None
        self.token_times = []
        self.done = False           # streams: data: [DONE] seen
        self.error_event = None     # streams: an event carrying {"error": ...}
        self.exception = None       # a connection or protocol error (e.g. the peer went away)
        self.body = b""
        self.started = 0.0
        self.finished = 0.0

    @property
    def ok(self):
        return self.status == 200 and self.exception is None and self.error_event is None and self.done

    @property
    def itl(self):
        """Gaps between consecutive token events (the first token excluded: that is TTFT)."""
        t = self.token_times
        return [b - a for a, b in zip(t, t[1:])]

    @property
    def ttft(self):
        return self.token_times[0] if self.token_times else None

    def kind(self):
        """'ok', '429', 'midway' (a 200 stream that broke or carried an error), 'http <status>', 'exception'."""
        if self.ok:
            return "ok"
        if self.status == 200:
            return "midway"
        if self.status is None:
            return "exception"
        return str(self.status) if self.status == 429 else f"http {self.status}"


def post(host, port, path, body, timeout=600, headers=None):
    """POSTs a JSON body; a streaming body (`"stream": true`) is read event by event. Never raises."""
    o = Outcome()
    o.started = time.time()
    stream = bool(body.get("stream"))
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        o.t_status = time.time() - o.started
        o.status = r.status
        o.retry_after = r.getheader("Retry-After")
        if r.status != 200 or not stream:
            o.body = r.read()
            o.done = r.status == 200
            if r.status == 200:
                obj = json.loads(o.body)
                if "error" in obj or not obj.get("choices"):
                    o.error_event = "a 200 without choices"
        else:
            for raw in r:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    o.done = True
                    break
                obj = json.loads(data)
                if "error" in obj:
                    o.error_event = obj["error"].get("message", "error") if isinstance(obj["error"], dict) else str(obj["error"])
                    break
                for ch in obj.get("choices", []):
                    if ch.get("text") or (ch.get("delta") or {}).get("content"):
                        o.token_times.append(time.time() - o.started)
                        break
        c.close()
    except Exception as e:  # a reset, a truncated chunk, bad JSON: recorded, judged by the caller
        o.exception = f"{type(e).__name__}: {e}"
    o.finished = time.time()
    return o


class Bars:
    """Bar checks printed as PASS/FAIL (or INFO when not gated); `exit()` is non-zero if any failed."""

    def __init__(self):
        self.failed = []

    def check(self, name, passed, detail=""):
        print(f"{'PASS' if passed else 'FAIL'}  {name}" + (f": {detail}" if detail else ""))
        if not passed:
            self.failed.append(name)

    def info(self, name, detail):
        print(f"INFO  {name}: {detail}")

    def exit(self):
        print(f"{len(self.failed)} bar(s) failed: {', '.join(self.failed)}" if self.failed else "all bars met")
        sys.exit(1 if self.failed else 0)
