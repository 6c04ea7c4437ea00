//! Running a build tool: one place that turns a failed or missing program
//! into an [`Error::Build`] quoting the end of its output.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

/// Receives a line for each slow step of a build (an install, a compile), to
/// show as progress.
pub type Progress = dyn Fn(&str) + Send + Sync;

/// How many lines of a failed tool's output an error quotes.
const TAIL_LINES: usize = 30;

/// Runs `command` for the plugin in `dir` and returns its output. `what`
/// names the command in errors. A program that cannot start or exits with a
/// failure is an [`Error::Build`] with the end of its stderr (or stdout).
pub(crate) fn run_tool(mut command: Command, dir: &Path, what: &str) -> Result<Output> {
    let fail = |message: String| Error::Build {
        dir: dir.to_path_buf(),
        message,
    };
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run `{what}`: {e}")))?;
    if output.status.success() {
        return Ok(output);
    }
    let stream = if output.stderr.is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    Err(fail(format!(
        "`{what}` failed ({}):\n{}",
        output.status,
        tail(&String::from_utf8_lossy(stream))
    )))
}

/// The last [`TAIL_LINES`] lines of `text`; when that cuts some off, the
/// cut lines that mention an error come first (tools often print their usage
/// after the error).
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines.len().saturating_sub(TAIL_LINES);
    let errors = lines[..cut]
        .iter()
        .filter(|line| line.to_ascii_lowercase().contains("error"))
        .take(5);
    errors
        .chain(&lines[cut..])
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_tool_is_quoted() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo first >&2; echo last >&2; exit 3"]);
        let Err(Error::Build { message, dir }) = run_tool(command, Path::new("/p"), "sh -c …")
        else {
            panic!("expected a build error");
        };
        assert_eq!(dir, Path::new("/p"));
        assert!(message.contains("`sh -c …` failed"), "{message}");
        assert!(message.ends_with("first\nlast"), "{message}");
    }

    #[test]
    fn a_missing_program_is_named() {
        let command = Command::new("warden-no-such-tool");
        let error = run_tool(command, Path::new("/p"), "warden-no-such-tool").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("cannot run `warden-no-such-tool`")
        );
    }

    #[test]
    fn tail_keeps_error_lines_that_scrolled_away() {
        let mut text = String::from("error: bad option\n");
        text.push_str(&"usage line\n".repeat(40));
        let kept = tail(&text);
        assert!(kept.starts_with("error: bad option\nusage line"), "{kept}");
        assert_eq!(kept.lines().count(), TAIL_LINES + 1);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (0..50).map(|i| format!("{i}\n")).collect();
        let kept = tail(&text);
        assert!(kept.starts_with("20\n") && kept.ends_with("49"), "{kept}");
    }
}
