"""The throughput section of scripts/bench: upload and download MB/s of one witness-sized
file (100 MB) per object store, through the shim's own store code
(`examples/store_throughput.rs`: upload = hash + HEAD + PUT/multipart, download = stream
+ SHA-256 + write + rename), against the test bed's servers on loopback: file://, moto
(S3), Azurite (Azure Blob) and fake-gcs-server behind the test bed's XML-API front (GCS).

Runs alternate store by store (file://, S3, Azure, GCS, file://, ...) so load drift hits
all alike; each row gives the median MB/s with min-max. Loopback servers measure the
client and the emulator, not a cloud link: the numbers say what the shim's side costs.
"""
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

# Azurite's well-known development account (public, in Azure's documentation).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# object_store's GCS client against an emulator: no OAuth token is fetched.
GCS_EMULATOR_KEY = '{"private_key":"","private_key_id":"","client_email":"","disable_oauth":true}'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on port {port} within 60 s")


def start_azurite(bench, work):
    port = free_port()
    loc = work / "azurite"
    loc.mkdir()
    proc = subprocess.Popen([str(bench.TESTBED / "bin" / "azurite-blob"), "--blobHost", "127.0.0.1",
                             "--blobPort", str(port), "--silent", "--location", str(loc)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "azurite")
    endpoint = f"http://127.0.0.1:{port}"
    subprocess.run([str(bench.TESTBED / "venv" / "bin" / "python"),
                    str(bench.ROOT / "testbed" / "azurite" / "create-container.py"),
                    endpoint, AZURITE_ACCOUNT, AZURITE_KEY, "bench"], check=True, stdout=subprocess.DEVNULL)
    env = dict(AZURE_STORAGE_USE_EMULATOR="true", AZURE_STORAGE_ACCOUNT_NAME=AZURITE_ACCOUNT,
               AZURE_STORAGE_ACCOUNT_KEY=AZURITE_KEY, AZURITE_BLOB_STORAGE_URL=endpoint)
    return proc, env


def start_gcs(bench):
    port = free_port()
    proc = subprocess.Popen([str(bench.TESTBED / "bin" / "gcs-xml-front"), "-host", "127.0.0.1",
                             "-port", str(port), "-buckets", "bench"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "gcs-xml-front")
    env = dict(GOOGLE_BASE_URL=f"http://127.0.0.1:{port}", GOOGLE_ALLOW_HTTP="true",
               GOOGLE_SERVICE_ACCOUNT_KEY=GCS_EMULATOR_KEY)
    return proc, env


def bench_throughput(bench, table, runs, work, smoke):
    size_mb = 8 if smoke else 100
    bench.log(f"throughput: building examples/store_throughput; {size_mb} MB file, {runs} runs per store")
    subprocess.run(["cargo", "build", "--release", "--locked", "--example", "store_throughput"],
                   cwd=bench.ROOT, check=True)
    tool = bench.ROOT / "target" / "release" / "examples" / "store_throughput"
    blob = work / "throughput.bin"
    with open(blob, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    size = blob.stat().st_size
    (work / "store-throughput").mkdir()
    procs = []
    try:
        moto, aws = bench.start_moto(work)
        procs.append(moto)
        azurite, azure = start_azurite(bench, work)
        procs.append(azurite)
        gcs, google = start_gcs(bench)
        procs.append(gcs)
        stores = [("file://", f"file://{work / 'store-throughput'}", {}),
                  ("S3 (moto)", "s3://bench/t", aws),
                  ("Azure Blob (Azurite)", "az://bench/t", azure),
                  ("GCS (fake-gcs-server)", "gs://bench/t", google)]
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("BB_REMOTE_", "AWS_", "GOOGLE_", "AZURE_", "AZURITE_"))}
        speeds = {name: ([], []) for name, _, _ in stores}
        for i in range(runs + 1):  # the first round warms up
            for name, url, env in stores:
                out = subprocess.run([str(tool), url, str(blob)], env=dict(base, **env),
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(f"store_throughput on {url} failed:\n{out.stderr[-2000:]}")
                up, down, n = out.stdout.split()
                assert int(n) == size, out.stdout
                if i > 0:
                    speeds[name][0].append(size / 1e6 / float(up))
                    speeds[name][1].append(size / 1e6 / float(down))
        load = os.getloadavg()[0]
        for name, (ups, downs) in speeds.items():
            def fmt(v):
                return f"{statistics.median(v):.0f} MB/s ({min(v):.0f}-{max(v):.0f})"
            table.measure(f"throughput {name}, {size_mb} MB: upload / download",
                          f"{fmt(ups)} / {fmt(downs)}, load {load:.1f}")
    finally:
        for p in procs:
            p.kill()
            p.wait()
