//! The package as published: license files that match the manifest, and docs.rs settings
//! that show which items need which feature.

const MANIFEST: &str = include_str!("../Cargo.toml");

#[test]
fn license_files_match_the_manifest() {
    assert!(MANIFEST.contains("license = \"MIT OR Apache-2.0\""));
    let mit = include_str!("../LICENSE-MIT");
    assert!(mit.contains("Copyright (c) 2026 The wirekit developers"));
    assert!(mit.contains("Permission is hereby granted, free of charge, to any person"));
    assert!(mit.contains("THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND"));
    let apache = include_str!("../LICENSE-APACHE");
    for part in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "9. Accepting Warranty or Additional Liability.",
        "END OF TERMS AND CONDITIONS",
    ] {
        assert!(apache.contains(part), "LICENSE-APACHE lacks {part:?}");
    }
}

#[test]
fn docs_rs_documents_every_feature_with_its_badge() {
    let metadata = MANIFEST
        .split("[package.metadata.docs.rs]")
        .nth(1)
        .expect("a [package.metadata.docs.rs] table");
    let table = metadata.split("\n[").next().unwrap();
    assert!(table.contains("all-features = true"), "{table}");
    assert!(
        table.contains("rustdoc-args = [\"--cfg\", \"docsrs\"]"),
        "{table}"
    );
    let lib = include_str!("../src/lib.rs");
    assert!(lib.contains("#![cfg_attr(docsrs, feature(doc_cfg))]"));
    assert!(lib.contains("#[cfg_attr(docsrs, doc(cfg(feature = \"std\")))]\npub mod net;"));
}
