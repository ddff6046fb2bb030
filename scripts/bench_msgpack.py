"""The msgpack section of scripts/bench: bb 5.x's `msgpack run --input <P>.sock`, as the
Aztec 5.x prover drives it through bb.js, served by the real bb vs by the shim.

Rows: spawn to socket ready (connectable); 1000 sequential Poseidon2Hash calls on one
connection (per-call p50/p95, relayed to the shim's native child); a delegated
CircuitProve of hashchain_big on a fresh process (spawn, prove, Shutdown) through a
local worker on file:// and S3; and the shim's peak RSS on a CircuitProve frame holding
a 100 MB witness. Requests are encoded as bb.js encodes them (map16).
"""
import base64
import gzip
import os
import pathlib
import socket
import struct
import subprocess
import time


def _str(s):
    b = s.encode()
    n = len(b)
    if n < 32:
        return bytes([0xA0 | n]) + b
    return (b"\xd9" + bytes([n]) if n < 256 else b"\xda" + struct.pack(">H", n)) + b


def _bin(b):
    n = len(b)
    if n < 256:
        return b"\xc4" + bytes([n]) + b
    return (b"\xc5" + struct.pack(">H", n) if n < 65536 else b"\xc6" + struct.pack(">I", n)) + b


def _map16(items):
    return b"\xde" + struct.pack(">H", len(items)) + b"".join(_str(k) + v for k, v in items)


def request(name, payload):
    return b"\x91\x92" + _str(name) + payload


def poseidon2_hash(i):
    fr = lambda n: _bin(n.to_bytes(32, "big"))
    return request("Poseidon2Hash", _map16([("inputs", b"\x92" + fr(i) + fr(i + 1))]))


SHUTDOWN = request("Shutdown", _map16([]))


def circuit_prove(bytecode, witness, vk):
    settings = _map16([("ipa_accumulation", b"\xc2"), ("oracle_hash_type", _str("poseidon2")),
                       ("disable_zk", b"\xc3"), ("optimized_solidity_verifier", b"\xc2")])
    circuit = _map16([("name", _str("c")), ("bytecode", _bin(bytecode)), ("verification_key", _bin(vk))])
    return request("CircuitProve", _map16([("circuit", circuit), ("witness", _bin(witness)),
                                           ("settings", settings)]))


def raw_circuit(circuits, name):
    import json
    program = json.loads((circuits / name / "program.json").read_text())
    bytecode = gzip.decompress(base64.b64decode(program["bytecode"]))
    witness = gzip.decompress((circuits / name / "witness.gz").read_bytes())
    return bytecode, witness


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(str(path))

    def ask(self, body):
        self.s.sendall(struct.pack("<I", len(body)) + body)
        head = self._read(4)
        return self._read(struct.unpack("<I", head)[0])

    def _read(self, n):
        chunks, got = [], 0
        while got < n:
            c = self.s.recv(min(n - got, 1 << 20))
            if not c:
                raise SystemExit("server closed the connection")
            chunks.append(c)
            got += len(c)
        return b"".join(chunks)

    def close(self):
        self.s.close()


def serve(exe, sock, env, cwd):
    """Spawn `exe msgpack run --input sock`; returns (process, seconds until connectable)."""
    if sock.exists():
        sock.unlink()
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe), "msgpack", "run", "--input", str(sock)], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = t0 + 20
    while True:
        try:
            conn = Conn(sock)
            return proc, time.perf_counter() - t0, conn
        except OSError:
            if proc.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"{exe} did not serve {sock}")
            time.sleep(0.0002)


def stop(proc, conn):
    conn.ask(SHUTDOWN)
    conn.close()
    proc.wait(timeout=30)


def relay_floor(work, bb, env):
    """The C forwarder of scripts/relay_floor.c in front of its own bb: (processes, Conn),
    or None without a C compiler."""
    exe = work / "relay_floor"
    src = pathlib.Path(__file__).with_name("relay_floor.c")
    if subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], stderr=subprocess.DEVNULL).returncode != 0:
        return None
    upstream, _, conn = serve(bb, work / "floor-up.sock", env, work)
    conn.close()
    sock = work / "floor.sock"
    relay = subprocess.Popen([str(exe), str(sock), str(work / "floor-up.sock")], stderr=subprocess.DEVNULL)
    deadline = time.perf_counter() + 10
    while True:
        try:
            return [relay, upstream], Conn(sock)
        except OSError:
            if relay.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit("relay_floor did not start")
            time.sleep(0.001)


def own_cost(pid):
    """(CPU seconds, voluntary context switches) of one process's own threads so far."""
    cpu = switches = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        cpu += int((task / "schedstat").read_text().split()[0]) / 1e9
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                switches += int(line.split()[1])
    return cpu, switches


def relay_rows(ctx, table, runs, work, variants):
    """1000 sequential Poseidon2Hash calls per round on one connection each to: bb, the
    shim (relaying to its native child), and the relay floor (a C forwarder in front of
    another bb). All serve at once and the calls rotate call by call, so all see the same
    machine load. The shim's own CPU time and sleeps (voluntary context switches) per
    call are printed next to the floor's: a relay that sleeps more than twice per call is
    woken for nothing."""
    served = {}
    procs = []
    for name, exe, env in variants:
        proc, _, conn = serve(exe, work / f"{name}.sock", env, work)
        served[name] = (proc, conn)
    floor = relay_floor(work, ctx.BB, variants[0][2])
    if floor is None:
        ctx.log("msgpack: no C compiler (cc): the relay floor row is skipped")
    else:
        procs, conn = floor
        served["floor"] = (procs[0], conn)
    names = list(served)
    requests = [poseidon2_hash(i) for i in range(1000)]
    calls = {k: [] for k in names}
    rounds = {k: [] for k in names if k != "direct"}
    cost = {k: [0.0, 0] for k in ("shim", "floor") if k in served}
    try:
        for name in names:
            for r in requests[:50]:  # warm-up; the shim starts its native child on first need
                served[name][1].ask(r)
        for _ in range(1 if runs == 1 else 5):
            one = {k: [] for k in names}
            before = {k: own_cost(served[k][0].pid) for k in cost}
            for i, r in enumerate(requests):
                for name in names[i % len(names):] + names[:i % len(names)]:
                    t0 = time.perf_counter()
                    served[name][1].ask(r)
                    one[name].append(time.perf_counter() - t0)
            for k in cost:
                after = own_cost(served[k][0].pid)
                cost[k][0] += after[0] - before[k][0]
                cost[k][1] += after[1] - before[k][1]
            p50 = {k: sorted(v)[len(v) // 2] * 1e6 for k, v in one.items()}
            for k in rounds:
                rounds[k].append(f"{p50[k] - p50['direct']:+.1f}")
            for k, v in one.items():
                calls[k].extend(v)
    finally:
        for name, (proc, conn) in served.items():
            if name == "floor":
                conn.close()
            else:
                stop(proc, conn)
        for p in procs:
            p.kill()
            p.wait()
    table.percentiles("msgpack: 1000 sequential Poseidon2Hash (per call)", calls["direct"], calls["shim"])
    p50 = {k: sorted(v)[len(v) // 2] * 1e6 for k, v in calls.items()}
    n = len(calls["direct"])
    per_call = {k: f"{c[0] / n * 1e6:.1f} us CPU, {c[1] / n:.2f} sleeps" for k, c in cost.items()}
    table.measure("msgpack: 1000 sequential Poseidon2Hash, p50 per call (alternating)",
                  f"bb {p50['direct']:.1f} us, shim {p50['shim']:.1f} us, added {p50['shim'] - p50['direct']:+.1f} us "
                  f"(per round: {', '.join(rounds['shim'])} us; {per_call['shim']} per call; "
                  f"load {os.getloadavg()[0]:.1f})")
    if "floor" in served:
        table.measure("msgpack: relay floor (scripts/relay_floor.c), p50 per call (same rounds)",
                      f"{p50['floor']:.1f} us, added {p50['floor'] - p50['direct']:+.1f} us "
                      f"(per round: {', '.join(rounds['floor'])} us; {per_call['floor']} per call)")


def bench_msgpack(ctx, table, runs, work):
    """ctx: the bench module (paths, start_worker, start_moto, write_vk, base_env)."""
    shim = ctx.RELEASE / "bb"
    home = work / "home-msgpack"
    home.mkdir()
    direct_env = dict(ctx.base_env(home), CRS_PATH=str(ctx.CRS), TMPDIR=str(work))
    sock = work / "bench.sock"
    store_url = f"file://{work / 'store-msgpack'}"
    (work / "store-msgpack").mkdir()
    worker, base = ctx.start_worker(work, store_url, direct_env)
    moto, aws = ctx.start_moto(work)
    procs = [worker, moto]
    try:
        shim_env = dict(direct_env, BB_REMOTE_BACKEND=base, BB_REMOTE_STORE=store_url,
                        BB_REMOTE_NATIVE_BIN=str(ctx.BB))
        variants = (("direct", ctx.BB, direct_env), ("shim", shim, shim_env))

        ready = {"direct": [], "shim": []}
        for i in range(1 if runs == 1 else 1 + runs * 10):
            for name, exe, env in variants:
                proc, t, conn = serve(exe, sock, env, work)
                stop(proc, conn)
                if i > 0 or runs == 1:
                    ready[name].append(t)
        table.compare("msgpack: spawn to socket ready", ready["direct"], ready["shim"])

        relay_rows(ctx, table, runs, work, variants)

        bytecode, witness = raw_circuit(ctx.CIRCUITS, "hashchain_big")
        vk = ctx.write_vk(work, ctx.CIRCUITS / "hashchain_big" / "program.json", direct_env).read_bytes()
        prove = circuit_prove(bytecode, witness, vk)
        stores = [("file://", shim_env)]
        s3_worker, s3_base = ctx.start_worker(work, "s3://bench", dict(direct_env, **aws))
        procs.append(s3_worker)
        stores.append(("S3", dict(direct_env, **aws, BB_REMOTE_BACKEND=s3_base, BB_REMOTE_STORE="s3://bench",
                                  BB_REMOTE_NATIVE_BIN=str(ctx.BB))))
        for label, env in stores:
            t = {"direct": [], "shim": []}
            answers = {}
            for i in range(1 if runs == 1 else 1 + runs):
                for name, exe, e in (("direct", ctx.BB, direct_env), ("shim", shim, env)):
                    t0 = time.perf_counter()
                    proc, _, conn = serve(exe, sock, e, work)
                    answers[name] = conn.ask(prove)
                    stop(proc, conn)
                    if i > 0 or runs == 1:
                        t[name].append(time.perf_counter() - t0)
            if answers["direct"] != answers["shim"]:
                raise SystemExit(f"msgpack {label}: the delegated CircuitProve answer differs from bb's")
            table.compare(f"msgpack delegated {label}: CircuitProve hashchain_big (fresh process)",
                          t["direct"], t["shim"])

        big = circuit_prove(bytecode, os.urandom(100 * 1024 * 1024), vk)
        proc, _, conn = serve(shim, sock, shim_env, work)
        conn.ask(big)  # bb rejects random bytes as a witness: only the shim's memory matters
        peak = ctx.proc_peak_rss_mb(proc.pid)
        stop(proc, conn)
        table.measure("rss: shim peak, CircuitProve frame with a 100 MB witness",
                      f"{peak:.1f} MB (frame {len(big) / 1e6:.1f} MB)")
    finally:
        for p in procs:
            p.kill()
            p.wait()
