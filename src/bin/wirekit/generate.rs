//! `wirekit generate`: the man pages and shell completions, made from the same clap
//! definitions that parse the arguments, so they cannot fall behind. Hidden from `--help`:
//! it is for packagers and for the install step in the README.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use clap_complete::Shell;

#[derive(Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Man pages, one per command (wirekit.1, wirekit-serve.1, ...), into DIR (e.g.
    /// /usr/local/share/man/man1).
    Man {
        /// Directory to write the pages into (created if missing).
        dir: PathBuf,
    },
    /// Completions for SHELL, into DIR under the name that shell looks for (bash:
    /// wirekit, zsh: _wirekit, fish: wirekit.fish), or to standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
        /// Directory to write the file into (created if missing), e.g.
        /// /usr/local/share/bash-completion/completions.
        dir: Option<PathBuf>,
    },
}

/// Runs `wirekit generate` for the program whose definitions `cmd` holds.
pub fn run(a: GenerateArgs, mut cmd: clap::Command) -> Result<(), String> {
    let name = cmd.get_name().to_string();
    match a.what {
        What::Man { dir } => {
            create(&dir)?;
            // Each command's page names the version in its title, as the top one does.
            clap_mangen::generate_to(cmd.propagate_version(true), &dir)
                .map_err(|e| format!("cannot write man pages into {}: {e}", dir.display()))
        }
        What::Completions { shell, dir } => {
            // Made in memory first: the generator panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut script);
            let Some(dir) = dir else {
                return io::stdout()
                    .write_all(&script)
                    .map_err(|e| format!("cannot write the completions: {e}"));
            };
            create(&dir)?;
            let path = dir.join(file_name(shell, &name));
            std::fs::write(&path, script)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
    }
}

/// The file name each shell loads completions for `name` from, on demand.
fn file_name(shell: Shell, name: &str) -> String {
    match shell {
        // bash-completion looks for the command's own name first.
        Shell::Bash => name.to_string(),
        other => clap_complete::Generator::file_name(&other, name),
    }
}

fn create(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}
