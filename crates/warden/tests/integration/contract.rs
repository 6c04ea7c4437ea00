//! Contract versions: plugins built against `warden:plugin@0.1.0` and
//! `@0.2.0` served side by side in one host, the version found in each
//! component, 0.2.0's additions (the call id in the request,
//! `describe-options`), and components of a version the host does not
//! serve refused with the versions it does.

use warden_testkit as common;

use warden::{ContractVersion, Error, ProcessRequest, Warden};

/// A component made from `wit` (world `w`), with functions that trap when
/// called: enough to be loaded and refused.
fn component_from_wit(wit: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("test.wit", wit).expect("test WIT");
    let world = resolve
        .select_world(&[package], Some("w"))
        .expect("world `w`");
    let module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    common::component_of(module, &resolve, world)
}

fn stats_json(host: &Warden, request: ProcessRequest) -> serde_json::Value {
    let response = host
        .process_blocking("text-stats", request)
        .expect("text-stats");
    serde_json::from_slice(&response.output).expect("JSON output")
}

#[test]
fn plugins_of_both_contract_versions_serve_side_by_side() {
    let host = common::host();
    let old = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("0.1.0 plugin");
    let new = host
        .load_blocking(common::plugin_dir("text-stats"))
        .expect("0.2.0 plugin");
    assert_eq!(old.info().contract, ContractVersion::V0_1_0);
    assert_eq!(new.info().contract, ContractVersion::V0_2_0);

    // 0.2.0 added `describe-options`; a 0.1.0 plugin has none to give.
    assert_eq!(
        old.describe_options_blocking().expect("0.1.0 options"),
        None
    );
    let options = new
        .describe_options_blocking()
        .expect("0.2.0 options")
        .expect("a 0.2.0 plugin lists its options");
    assert_eq!(options.len(), 1);
    assert_eq!(options[0].name, "top");
    assert_eq!(options[0].default.as_deref(), Some("5"));

    // 0.2.0 added the call id to the request: the caller's, or the host's.
    let given = stats_json(
        &host,
        ProcessRequest::new("the cat saw the dog")
            .option("top", "1")
            .call_id("req-42"),
    );
    assert_eq!(given["call_id"], "req-42");
    assert_eq!(given["stats"]["words"], 5);
    assert_eq!(given["stats"]["top"], serde_json::json!([["the", 2]]));
    let made_up = stats_json(&host, ProcessRequest::new("x"));
    let id = made_up["call_id"].as_str().expect("call id");
    assert!(!id.is_empty() && id != "req-42", "{id}");

    // Both versions at once, from several threads: every call answered by
    // the right plugin.
    std::thread::scope(|s| {
        for t in 0..4 {
            let host = &host;
            s.spawn(move || {
                for i in 0..50 {
                    let text = format!("word{t} word{i}");
                    let upper = host
                        .process_blocking(
                            "text-transform",
                            ProcessRequest::new(text.clone()).option("op", "upper"),
                        )
                        .expect("0.1.0 call");
                    assert_eq!(upper.output, text.to_uppercase().into_bytes());
                    let id = format!("t{t}-{i}");
                    let stats = stats_json(host, ProcessRequest::new(text).call_id(id.clone()));
                    assert_eq!(stats["call_id"], id.as_str());
                    assert_eq!(stats["stats"]["words"], 2);
                }
            });
        }
    });
    // Every call counted, `describe-options` included.
    assert_eq!(old.stats().calls, 1 + 200);
    assert_eq!(new.stats().calls, 1 + 2 + 200);
}

#[test]
fn a_component_of_an_unserved_contract_version_is_refused() {
    let host = common::host();
    let bytes = component_from_wit(
        "package warden:plugin@0.9.0;
         interface plugin { get-status: func() -> u32; }
         world w { export plugin; }",
    );
    let manifest = common::manifest_from(
        "name = \"from-the-future\"\nversion = \"1.0.0\"\nworld = \"minimal\"",
    );
    let err = host
        .load_bytes_blocking(manifest, bytes)
        .expect_err("an unknown contract version must be refused");
    match &err {
        Error::UnsupportedContract {
            plugin,
            interfaces,
            supported,
        } => {
            assert_eq!(plugin, "from-the-future");
            assert_eq!(interfaces, &["warden:plugin/plugin@0.9.0"]);
            assert_eq!(supported, "0.1.0, 0.2.0");
        }
        other => panic!("expected UnsupportedContract, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("serves warden:plugin 0.1.0, 0.2.0"),
        "{message}"
    );
    assert!(host.plugins().is_empty());
}

#[test]
fn a_component_whose_functions_do_not_match_its_contract_is_refused_by_name() {
    // Interface names of contract 0.2.0 (so detection accepts it), but a
    // `plugin` without `get-metadata` and a `processing` without `process`.
    let bytes = component_from_wit(
        "package test:old-shape;
         world w {
             export warden:plugin/plugin@0.1.0;
             export warden:plugin/processing@0.2.0;
         }
         package warden:plugin@0.1.0 {
             interface plugin { get-status: func() -> u32; }
         }
         package warden:plugin@0.2.0 {
             interface processing { validate: func(input: list<u8>) -> bool; }
         }",
    );
    let manifest =
        common::manifest_from("name = \"half-done\"\nversion = \"1.0.0\"\nworld = \"processor\"");
    let err = common::host()
        .load_bytes_blocking(manifest, bytes)
        .expect_err("mismatched functions must be refused");
    match &err {
        Error::WrongWorld {
            plugin, missing, ..
        } => {
            assert_eq!(plugin, "half-done");
            assert!(missing.join(" ").contains("get-metadata"), "{missing:?}");
        }
        other => panic!("expected WrongWorld, got {other:?}"),
    }
}
