//! `warden build`: plugin sources to components, with progress.

use std::path::PathBuf;
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
    let bar = ProgressBar::new(sources.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    for source in &sources {
        bar.set_message(format!("building {}", source.display()));
        let built = warden::build::build_plugin(source, &args.out);
        bar.inc(1);
        let built = built?;
        let line = format!(
            "built {} {} ({} KiB) in {:.1}s -> {}",
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
    }
    bar.finish_and_clear();
    eprintln!(
        "{} plugin(s) built into {}",
        sources.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
