//! The book's CLI reference (`docs/src/reference/cli.md`) is generated
//! from the clap definitions; these tests fail when it drifts from them.
//! Regenerate it with `WARDEN_WRITE_REFERENCE=1 cargo test -p warden-cli
//! reference`.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::args::Cli;

fn reference_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/reference/cli.md")
}

fn generated() -> String {
    let options = clap_markdown::MarkdownOptions::new()
        .title("CLI reference".to_string())
        .show_footer(false)
        .show_table_of_contents(true);
    let body = clap_markdown::help_markdown_custom::<Cli>(&options);
    format!(
        "<!-- Generated from the clap definitions in crates/warden-cli/src/args.rs; \
         do not edit. -->\n\n{body}"
    )
}

#[test]
fn the_book_reference_is_generated_from_the_cli() {
    let path = reference_path();
    let expected = generated();
    if std::env::var_os("WARDEN_WRITE_REFERENCE").is_some() {
        std::fs::write(&path, &expected).expect("writing the CLI reference");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == expected,
        "{} is not what the CLI's definitions generate; run \
         `WARDEN_WRITE_REFERENCE=1 cargo test -p warden-cli reference` and commit it",
        path.display()
    );
}

#[test]
fn every_subcommand_has_a_section_in_the_reference() {
    let reference = generated();
    let cli = Cli::command();
    let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    assert!(names.len() >= 18, "{names:?}");
    for name in names {
        let heading = format!("## `warden {name}`");
        assert!(
            reference.lines().any(|l| l == heading),
            "the reference has no section for `warden {name}`"
        );
    }
}
