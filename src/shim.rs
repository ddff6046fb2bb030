//! The `bb` shim's main. (placeholder)
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(1)
}
