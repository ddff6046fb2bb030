//! `bb msgpack run`'s argv: which invocations the shim serves itself, and the argv
//! the shim gives a bb it runs to serve one.
//!
//! Only `msgpack run` with a `.sock` input: the Unix-socket server the 5.x prover's
//! bb.js talks to. `.shm`, stdin, file input, help, `schema`, `curve_constants`, and
//! anything CLI11 would reject go to the native bb untouched, so bb answers them
//! with its own output and exit code.
use std::ffi::OsString;
use std::path::PathBuf;

/// The argv (without the program) of a bb serving the input named next.
pub(crate) const SERVE: [&str; 3] = ["msgpack", "run", "--input"];

/// Options of `bb msgpack run` that take a value, other than the input.
const VALUED: &[&str] = &[
    "--request-ring-size",
    "--response-ring-size",
    "--max-clients",
];

/// The socket path of a `msgpack run --input <P>.sock` invocation (argv without the
/// program name), or `None` when the native bb should run it.
pub(crate) fn socket_input(args: &[OsString]) -> Option<PathBuf> {
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    let (["msgpack", "run"], rest) = args.split_at_checked(2)? else {
        return None;
    };
    let mut input = None;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let value = if let Some(v) = arg.strip_prefix("--input=") {
            v
        } else if *arg == "--input" || *arg == "-i" {
            it.next()?
        } else if let Some(v) = arg.strip_prefix("-i").filter(|v| !v.is_empty()) {
            v.strip_prefix('=').unwrap_or(v)
        } else if VALUED.contains(arg) {
            it.next()?;
            continue;
        } else if VALUED.iter().any(|o| arg.starts_with(&format!("{o}="))) {
            continue;
        } else {
            // Help, an unknown option or a stray argument: bb's own answer.
            return None;
        };
        if input.replace(value).is_some() {
            return None;
        }
    }
    input
        .filter(|p| p.ends_with(".sock") && !p.starts_with('-'))
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(line: &str) -> Option<String> {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        socket_input(&args).map(|p| p.display().to_string())
    }

    #[test]
    fn every_cli11_spelling_of_a_socket_input_is_served() {
        for line in [
            "msgpack run --input /t/bb-1-0-0.sock",
            "msgpack run -i /t/bb-1-0-0.sock",
            "msgpack run --input=/t/bb-1-0-0.sock",
            "msgpack run -i/t/bb-1-0-0.sock",
            "msgpack run --max-clients 4 --input /t/bb-1-0-0.sock",
            "msgpack run --input /t/bb-1-0-0.sock --max-clients=4",
        ] {
            assert_eq!(served(line).as_deref(), Some("/t/bb-1-0-0.sock"), "{line}");
        }
    }

    #[test]
    fn everything_else_goes_to_the_native_bb() {
        for line in [
            "msgpack run",
            "msgpack run --input /t/bb-sync-1-0-0.shm --request-ring-size 4194304",
            "msgpack run --input requests.bin",
            "msgpack run --input",
            "msgpack run --input /t/a.sock --help",
            "msgpack run --input /t/a.sock --input /t/b.sock",
            "msgpack run --input /t/a.sock --bogus",
            "msgpack schema",
            "msgpack curve_constants",
            "prove --input /t/a.sock",
            "msgpack",
        ] {
            assert_eq!(served(line), None, "{line}");
        }
    }
}
