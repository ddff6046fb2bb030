//! Serving `msgpack run --input <P>.sock`: a served process (the shim or the real bb),
//! a raw frame client, and request frames encoded as bb.js encodes them (map16).
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::testbed::{circuit, testbed, Scratch};

/// A process serving a socket; killed when dropped.
pub struct Served {
    pub child: Child,
    pub socket: PathBuf,
    pub stderr: PathBuf,
}

impl Served {
    /// Start `command msgpack run --input <socket>` and wait (bounded) for the socket.
    pub fn start(mut command: Command, socket: &Path) -> Self {
        let stderr = socket.with_extension("stderr");
        let child = command
            .args(["msgpack", "run", "--input"])
            .arg(socket)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut served = Self {
            child,
            socket: socket.to_owned(),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(socket).is_err() {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("server exited with {status}: {}", served.stderr_text());
            }
            assert!(Instant::now() < deadline, "no socket within 20 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        served
    }

    /// The real bb serving `socket`, with the test CRS.
    pub fn native(scratch: &Scratch, socket: &Path) -> Self {
        Self::start(native_command(scratch), socket)
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.socket)
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own unreaped child; no memory is shared.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real bb in `scratch`, finding the test CRS through `CRS_PATH` as bb.js's does.
pub fn native_command(scratch: &Scratch) -> Command {
    let mut cmd = scratch.command(&testbed().bb);
    cmd.env("CRS_PATH", &testbed().crs_dir);
    cmd
}

/// The shim in `scratch`, with the test bed's bb as its native bb and the test CRS.
pub fn shim_command(scratch: &Scratch) -> Command {
    let mut cmd = scratch.command(env!("CARGO_BIN_EXE_bb"));
    cmd.env("CRS_PATH", &testbed().crs_dir)
        .env("BB_REMOTE_NATIVE_BIN", &testbed().bb)
        .env("TMPDIR", &scratch.work);
    cmd
}

/// A raw frame client with bounded reads.
pub struct Client {
    pub stream: UnixStream,
}

impl Client {
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        Self { stream }
    }

    pub fn send(&mut self, body: &[u8]) {
        self.send_pipelined(&[body]);
    }

    /// Several frames in one write, so a server that closes after the first one (Shutdown)
    /// cannot make a later write fail with EPIPE: they are all queued before it reads.
    pub fn send_pipelined(&mut self, bodies: &[&[u8]]) {
        let mut bytes = Vec::new();
        for body in bodies {
            bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
            bytes.extend_from_slice(body);
        }
        self.stream.write_all(&bytes).unwrap();
    }

    /// The next answer's body; `None` when the server closed the connection (a reset
    /// too: closing with our unread request still queued resets, as bb's close does).
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let mut prefix = [0u8; 4];
        match self.stream.read_exact(&mut prefix) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return None
            }
            Err(e) => panic!("reading an answer: {e}"),
        }
        let mut body = vec![0; u32::from_le_bytes(prefix) as usize];
        self.stream.read_exact(&mut body).unwrap();
        Some(body)
    }

    /// Send one request and read its answer.
    pub fn ask(&mut self, body: &[u8]) -> Vec<u8> {
        self.send(body);
        self.recv().expect("connection closed before the answer")
    }

    /// `true` if nothing arrives within `wait`.
    pub fn silent_for(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        let silent = match self.stream.read(&mut byte) {
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        silent
    }
}

/// The response's name (`[name, payload]`).
pub fn answer_name(body: &[u8]) -> String {
    let len = match body.get(1) {
        Some(tag @ 0xa0..=0xbf) => usize::from(tag & 0x1f),
        other => panic!("unexpected answer start {other:?}: {body:02x?}"),
    };
    String::from_utf8(body[2..2 + len].to_vec()).unwrap()
}

// ---- request encoding, as msgpackr (bb.js) writes it ----

pub fn str_(s: &str) -> Vec<u8> {
    let mut out = match s.len() {
        n @ 0..=31 => vec![0xa0 | n as u8],
        n @ 32..=255 => vec![0xd9, n as u8],
        n => [&[0xda][..], &(n as u16).to_be_bytes()].concat(),
    };
    out.extend_from_slice(s.as_bytes());
    out
}

pub fn bin(b: &[u8]) -> Vec<u8> {
    let mut out = match b.len() {
        n @ 0..=255 => vec![0xc4, n as u8],
        n @ 256..=65535 => [&[0xc5][..], &(n as u16).to_be_bytes()].concat(),
        n => [&[0xc6][..], &(n as u32).to_be_bytes()].concat(),
    };
    out.extend_from_slice(b);
    out
}

pub fn map16(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0xde];
    out.extend((entries.len() as u16).to_be_bytes());
    for (k, v) in entries {
        out.extend(str_(k));
        out.extend(v);
    }
    out
}

pub fn request(name: &str, payload: Vec<u8>) -> Vec<u8> {
    [&[0x91, 0x92][..], &str_(name), &payload].concat()
}

pub fn blake2s(data: &[u8]) -> Vec<u8> {
    request("Blake2s", map16(&[("data", bin(data))]))
}

/// `Poseidon2Hash` over `n` field elements derived from `seed` (n = 300k: ~1.5 s).
pub fn poseidon2_hash(n: usize, seed: u8) -> Vec<u8> {
    let mut inputs = if n < 16 {
        vec![0x90 | n as u8]
    } else {
        [&[0xdd][..], &(n as u32).to_be_bytes()].concat()
    };
    for i in 0..n {
        let mut fr = [0u8; 32];
        fr[31] = seed;
        fr[24..28].copy_from_slice(&(i as u32).to_be_bytes());
        inputs.extend(bin(&fr));
    }
    request("Poseidon2Hash", map16(&[("inputs", inputs)]))
}

pub fn shutdown() -> Vec<u8> {
    request("Shutdown", map16(&[]))
}

/// Proof settings as bb.js sends them.
pub struct Settings<'a> {
    pub oracle: &'a str,
    pub ipa: bool,
    pub disable_zk: bool,
}

pub const NON_ZK: Settings<'static> = Settings {
    oracle: "poseidon2",
    ipa: false,
    disable_zk: true,
};

/// A `CircuitProve` of a committed circuit, bytecode and witness uncompressed as the
/// 5.x prover sends them; `vk` empty lets bb compute it.
pub fn circuit_prove(name: &str, vk: &[u8], settings: &Settings<'_>) -> Vec<u8> {
    let (_, witness) = raw_circuit(name);
    circuit_prove_with(name, vk, &witness, settings)
}

/// [`circuit_prove`] with the given (uncompressed) witness.
pub fn circuit_prove_with(
    name: &str,
    vk: &[u8],
    witness: &[u8],
    settings: &Settings<'_>,
) -> Vec<u8> {
    let (bytecode, _) = raw_circuit(name);
    let b = |v: bool| vec![if v { 0xc3 } else { 0xc2 }];
    request(
        "CircuitProve",
        map16(&[
            (
                "circuit",
                map16(&[
                    ("name", str_(name)),
                    ("bytecode", bin(&bytecode)),
                    ("verification_key", bin(vk)),
                ]),
            ),
            ("witness", bin(witness)),
            (
                "settings",
                map16(&[
                    ("ipa_accumulation", b(settings.ipa)),
                    ("oracle_hash_type", str_(settings.oracle)),
                    ("disable_zk", b(settings.disable_zk)),
                    ("optimized_solidity_verifier", b(false)),
                ]),
            ),
        ]),
    )
}

/// Uncompressed bytecode (from the nargo artifact) and witness of a committed circuit.
pub fn raw_circuit(name: &str) -> (Vec<u8>, Vec<u8>) {
    let c = circuit(name);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&c.program).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let b64 = dir.path().join("bytecode.b64");
    std::fs::write(&b64, json["bytecode"].as_str().unwrap()).unwrap();
    let decode = format!("base64 -d {} | gzip -dc", b64.display());
    let bytecode = shell(&decode);
    let witness = shell(&format!("gzip -dc {}", c.witness.display()));
    (bytecode, witness)
}

fn shell(script: &str) -> Vec<u8> {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    out.stdout
}

/// Processes whose command line mentions `needle` (to find leftovers).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(text);
            }
        }
    }
    found
}
