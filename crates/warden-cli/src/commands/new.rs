//! `warden new`: a working plugin from a template, in any of the five
//! languages, with the contract's WIT beside it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use include_dir::{Dir, include_dir};
use warden_build::Language;

use crate::args::NewArgs;

/// `templates/<lang>/<world>/`: each a plugin with `{{name}}` and
/// `{{description}}` placeholders.
static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

pub fn run(args: &NewArgs) -> Result<ExitCode> {
    warden::validate_name(&args.name).map_err(anyhow::Error::msg)?;
    let language = Language::from_name(&args.lang)
        .with_context(|| format!("unknown language `{}`", args.lang))?;
    let description = args
        .description
        .clone()
        .unwrap_or_else(|| format!("The {} plugin.", args.name));
    check_description(&description)?;
    let dest = args.path.join(&args.name);
    if dest.exists() {
        bail!(
            "{} already exists; choose another name or --path",
            dest.display()
        );
    }
    scaffold(&dest, language, &args.world, &args.name, &description)?;
    eprintln!(
        "created {} ({language}, {}) in {}",
        args.name,
        args.world,
        dest.display()
    );
    let try_it = match args.world.as_str() {
        "processor" => format!("warden call {} -i 'hello'", args.name),
        _ => "warden event demo.happened '{\"hello\":1}'".to_string(),
    };
    eprintln!("next:\n  cd {}\n  warden build\n  {try_it}", dest.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes the template for `language` and `world` into `dest`, with the
/// contract's WIT in `wit/` (and, for Go, the `go.mod` its bindings need).
pub fn scaffold(
    dest: &Path,
    language: Language,
    world: &str,
    name: &str,
    description: &str,
) -> Result<()> {
    let template = format!("{}/{world}", language.name());
    let dir = TEMPLATES
        .get_dir(&template)
        .with_context(|| format!("no template for {template}"))?;
    let mut files = Vec::new();
    collect(dir, &mut files);
    for file in files {
        let relative = file.path().strip_prefix(&template).with_context(|| {
            format!("template file {} outside {template}", file.path().display())
        })?;
        let text = file
            .contents_utf8()
            .with_context(|| format!("template file {} is not UTF-8", file.path().display()))?
            .replace("{{name}}", name)
            .replace("{{description}}", description);
        let path = dest.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    warden::write_contract_wit(&dest.join("wit"))?;
    if language == Language::Go {
        let go_mod = dest.join("go.mod");
        std::fs::write(&go_mod, warden_build::go_mod())
            .with_context(|| format!("writing {}", go_mod.display()))?;
    }
    Ok(())
}

/// Every file under `dir`, depth first.
fn collect<'a>(dir: &'a Dir<'a>, files: &mut Vec<&'a include_dir::File<'a>>) {
    files.extend(dir.files());
    for sub in dir.dirs() {
        collect(sub, files);
    }
}

/// The description lands inside string literals of TOML, Python, JS, Go, C
/// and Rust files, so quotes, backslashes and control characters are refused
/// rather than escaped six ways.
fn check_description(description: &str) -> Result<()> {
    if let Some(c) = description
        .chars()
        .find(|c| matches!(c, '"' | '\'' | '\\' | '`') || c.is_control())
    {
        bail!(
            "the description may not contain {c:?}: it is written into string literals of the \
             plugin's source; leave it out and edit plugin.toml afterwards"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_both_worlds() {
        for language in Language::ALL {
            for world in ["processor", "event-handler"] {
                let template = format!("{}/{world}", language.name());
                let dir = TEMPLATES.get_dir(&template);
                assert!(dir.is_some(), "missing template {template}");
                let mut files = Vec::new();
                collect(dir.unwrap(), &mut files);
                let manifest = files
                    .iter()
                    .find(|f| f.path().ends_with("plugin.toml"))
                    .and_then(|f| f.contents_utf8())
                    .unwrap_or_else(|| panic!("{template} has no plugin.toml"));
                assert!(manifest.contains("{{name}}"), "{template}");
                assert!(
                    manifest.contains(&format!("world = \"{world}\"")),
                    "{template}"
                );
            }
        }
    }

    #[test]
    fn quotes_in_descriptions_are_refused() {
        assert!(check_description("Sums numbers.").is_ok());
        for bad in ["say \"hi\"", "it's", "a\\b", "two\nlines"] {
            assert!(check_description(bad).is_err(), "{bad}");
        }
    }
}
