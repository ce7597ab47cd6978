//! Guest components for Sluice's tests and benchmarks, built from source.
//!
//! The build script compiles the guest workspace (`guests/`) for `wasm32-wasip2` in release mode
//! and generates one constant per guest component holding the absolute path of its `.wasm`
//! file, named after the package in upper snake case (`validate-order` → [`VALIDATE_ORDER`]).
//! [`ALL`] lists every guest as (package name, path), and [`foreach_guest!`] expands a macro
//! once per guest:
//!
//! ```
//! macro_rules! check {
//!     ($konst:ident, $name:literal) => {
//!         assert!(sluice_test_artifacts::$konst.ends_with(".wasm"), "{}", $name);
//!     };
//! }
//! sluice_test_artifacts::foreach_guest!(check);
//! ```

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// Reads the component at `path` (one of this crate's constants), panicking with the path if it
/// cannot be read.
pub fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = path.as_ref();
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("reading guest component {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_component_is_a_wasm_component() {
        assert!(!super::ALL.is_empty());
        for (name, path) in super::ALL {
            let bytes = super::read(path);
            // Preamble of a component (layer 1), not a core module (layer 0).
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
            assert_eq!(
                &bytes[4..8],
                &[0x0d, 0x00, 0x01, 0x00],
                "{name} is not a component"
            );
        }
        assert!(
            !super::ALL
                .iter()
                .any(|(name, _)| *name == "sluice-order-logic")
        );
        assert!(
            super::ALL
                .iter()
                .any(|(name, path)| *name == "validate-order" && *path == super::VALIDATE_ORDER)
        );
    }
}
