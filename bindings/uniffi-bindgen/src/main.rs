//! `uniffi-bindgen`, built from the same `uniffi` version as `dotcore-ffi`
//! so generated code and scaffolding always agree. Used by
//! `scripts/test-kotlin.sh`:
//!
//! ```text
//! cargo run -p uniffi-bindgen -- generate --library target/debug/libdotcore_ffi.so \
//!     --language kotlin --out-dir OUT
//! ```

fn main() {
    uniffi::uniffi_bindgen_main()
}
