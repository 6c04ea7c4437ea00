//! `warden build`: plugin sources to components, with progress.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::BuildArgs;

pub fn run(args: &BuildArgs) -> Result<ExitCode> {
    let roots = if args.dirs.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.dirs.clone()
    };
    let mut sources = Vec::new();
    for root in &roots {
        let found = warden::discover(root)?;
        if found.is_empty() {
            anyhow::bail!(
                "no plugin sources in {} (a plugin source has a plugin.toml)",
                root.display()
            );
        }
        sources.extend(found);
    }
    let jobs: Vec<(PathBuf, Option<Vec<String>>)> =
        sources.into_iter().map(|s| (s, None)).collect();
    let built = build_with_progress(&jobs, &args.out, false)?;
    eprintln!(
        "{} plugin(s) built into {}",
        built.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Builds each source (with its own command, or its language's toolchain)
/// into `out`, showing a progress bar and one line per plugin built. Stops
/// at the first failure, unless `keep_going`: then each failure is a
/// warning line and the others are still built.
pub fn build_with_progress(
    sources: &[(PathBuf, Option<Vec<String>>)],
    out: &Path,
    keep_going: bool,
) -> Result<Vec<warden_build::BuiltPlugin>> {
    let bar = ProgressBar::new(sources.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress_bar = bar.clone();
    let builder = warden_build::Builder::new().on_progress(move |step| {
        // A warning stays on screen; a step is replaced by the next one.
        match step.starts_with("warning:") {
            true => progress_bar.suspend(|| eprintln!("{step}")),
            false => progress_bar.set_message(step.to_string()),
        }
    });
    let mut all = Vec::new();
    for (source, command) in sources {
        bar.set_message(format!("building {}", source.display()));
        let built = builder.build(source, command.as_deref(), out);
        bar.inc(1);
        let built = match built {
            Ok(built) => built,
            Err(e) if keep_going => {
                bar.suspend(|| eprintln!("warning: not built: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let language = built
            .language
            .map_or_else(|| "own command".to_string(), |l| l.to_string());
        let optimised = built
            .wasm_opt
            .as_deref()
            .map_or_else(String::new, |version| format!(", {version}"));
        let line = format!(
            "built {} {} [{language}] ({} KiB{optimised}) in {:.1}s -> {}",
            built.name,
            built.version,
            built.size.div_ceil(1024),
            built.duration.as_secs_f64(),
            built.dir.display()
        );
        // A hidden bar (stderr not a terminal) swallows println.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        all.push(built);
    }
    bar.finish_and_clear();
    Ok(all)
}
