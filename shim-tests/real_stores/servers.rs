//! Real object-store servers from the test bed, each started inside the calling
//! thread's network namespace (see `funnel::harness::in_netns`) on its usual port:
//! Azurite (Azure Blob), moto with signature checking on (S3, SigV4 verified
//! against an IAM access key) and fake-gcs-server behind the test bed's XML-API
//! front (GCS; see testbed/gcs/main.go for which requests are a TEST DOUBLE) and
//! WsgiDAV (WebDAV, for the `http://` store).
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::testbed::testbed;

/// A server process, killed on drop, with the store URL and the variables that reach it.
pub struct StoreServer {
    child: Child,
    _dir: tempfile::TempDir,
    pub url: String,
    pub env: Vec<(&'static str, String)>,
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin(name: &str) -> std::path::PathBuf {
    let path = testbed().crs_dir.parent().unwrap().join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/testbed",
        path.display()
    );
    path
}

fn spawn(command: &mut Command, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"))
}

/// Wait until something accepts TCP connections on 127.0.0.1:`port`.
fn wait_port(child: &mut Child, port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "server exited early ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a Python snippet with the test bed's venv (boto3 is there, for moto).
fn python(script: &str, args: &[&str]) -> String {
    python_run(Command::new(venv_python()).arg("-c").arg(script).args(args))
}

/// Runs a Python file of the source tree with the test bed's venv.
fn python_file(script: &Path, args: &[&str]) -> String {
    python_run(Command::new(venv_python()).arg(script).args(args))
}

fn venv_python() -> std::path::PathBuf {
    testbed().moto_server.parent().unwrap().join("python")
}

fn python_run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Azurite's well-known development account (public, in Azure's documentation).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's blob service on 127.0.0.1:10000 with container `container`.
pub fn azurite(container: &str) -> StoreServer {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("azurite.log");
    let mut child = spawn(
        Command::new(bin("azurite-blob"))
            .args(["--blobHost", "127.0.0.1", "--blobPort", "10000", "--silent"])
            .arg("--location")
            .arg(dir.path()),
        &log,
    );
    wait_port(&mut child, 10000, &log);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/azurite/create-container.py");
    let status = python_file(
        &script,
        &[
            "http://127.0.0.1:10000",
            AZURITE_ACCOUNT,
            AZURITE_KEY,
            container,
        ],
    );
    assert_eq!(status.trim(), "201", "creating the container");
    StoreServer {
        child,
        _dir: dir,
        url: format!("az://{container}/bb"),
        env: vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT.into()),
            ("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY.into()),
        ],
    }
}

/// Creates an IAM user allowed everything, its access key and the bucket, while moto
/// still lets requests through unchecked (`INITIAL_NO_AUTH_ACTION_COUNT`).
const IAM_SETUP: &str = r#"
import json, sys, boto3
endpoint, bucket = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="prover")
iam.put_user_policy(UserName="prover", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="prover")["AccessKey"]
boto3.client("s3", **kw).create_bucket(Bucket=bucket)
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

/// moto on 127.0.0.1:5000 that verifies every request's SigV4 signature against the
/// secret of an IAM access key it issued (after the four setup requests).
pub fn sigv4_s3(bucket: &str) -> StoreServer {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("moto.log");
    let mut child = spawn(
        Command::new(&testbed().moto_server)
            .args(["-H", "127.0.0.1", "-p", "5000"])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "4"),
        &log,
    );
    wait_port(&mut child, 5000, &log);
    let endpoint = "http://127.0.0.1:5000";
    let keys = python(IAM_SETUP, &[endpoint, bucket]);
    let (id, secret) = keys.trim().split_once(' ').expect("key id and secret");
    StoreServer {
        child,
        _dir: dir,
        url: format!("s3://{bucket}/bb"),
        env: vec![
            ("AWS_ENDPOINT", endpoint.into()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", id.into()),
            ("AWS_SECRET_ACCESS_KEY", secret.into()),
        ],
    }
}

/// The settings object_store's GCS client needs for an emulator: its base URL, plain
/// HTTP, and a service-account key with `disable_oauth` so no token is fetched.
pub const GCS_EMULATOR_KEY: &str =
    r#"{"private_key":"","private_key_id":"","client_email":"","disable_oauth":true}"#;

/// fake-gcs-server (through `gcs-xml-front`) on 127.0.0.1:4443 with bucket `bucket`.
pub fn fake_gcs(bucket: &str) -> StoreServer {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gcs.log");
    let mut child = spawn(
        Command::new(bin("gcs-xml-front")).args([
            "-host",
            "127.0.0.1",
            "-port",
            "4443",
            "-buckets",
            bucket,
        ]),
        &log,
    );
    wait_port(&mut child, 4443, &log);
    StoreServer {
        child,
        _dir: dir,
        url: format!("gs://{bucket}/bb"),
        env: vec![
            ("GOOGLE_BASE_URL", "http://127.0.0.1:4443".into()),
            ("GOOGLE_ALLOW_HTTP", "true".into()),
            ("GOOGLE_SERVICE_ACCOUNT_KEY", GCS_EMULATOR_KEY.into()),
        ],
    }
}

/// WsgiDAV (WebDAV, served by cheroot) on 127.0.0.1:8080, anonymous read-write, sharing
/// a fresh directory at `/`; the store lives under `/dav/bb`.
///
/// cheroot's listen backlog defaults to 5: eight uploads at once, each on a fresh
/// connection (the store reuses none, see src/store/webdav.rs), overflow it on a busy
/// machine and the kernel drops the extra SYNs, which the client resends after 1 s.
/// A WebDAV server for concurrent clients wants a deeper queue; so does this one.
pub fn webdav() -> StoreServer {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let config = dir.path().join("wsgidav.yaml");
    std::fs::write(&config, "server_args:\n  request_queue_size: 128\n").unwrap();
    let log = dir.path().join("wsgidav.log");
    let wsgidav = testbed().moto_server.with_file_name("wsgidav");
    let mut child = spawn(
        Command::new(wsgidav)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "8080",
                "--auth",
                "anonymous",
                "--server",
                "cheroot",
                "-q",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(&share),
        &log,
    );
    wait_port(&mut child, 8080, &log);
    StoreServer {
        child,
        _dir: dir,
        url: "http://127.0.0.1:8080/dav/bb".into(),
        env: Vec::new(),
    }
}
