//! The `bb` shim: accepts barretenberg's exact argv; configuration is environment only.
fn main() -> std::process::ExitCode {
    bb_remote::shim::main()
}
