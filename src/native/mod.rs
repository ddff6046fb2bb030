//! Passthrough to the native bb. (placeholder)
