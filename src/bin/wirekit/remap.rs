//! `wirekit remap`: a rule file tried without a client. What a name becomes for a client
//! address and a direction, and which rules did it, by line; or, with `--check`, whether
//! the file reads at all.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use wirekit::net::{Remap, RemapAction};
use wirekit::tftp::{Direction, Text};

#[derive(Args)]
pub struct RemapArgs {
    /// Rule file, in the format of tftp-hpa's -m (as `serve --remap` takes it).
    file: PathBuf,
    /// Name a client asks for.
    #[arg(required_unless_present = "check", conflicts_with = "check")]
    name: Option<String>,
    /// Only read the rule file: exit 0 if every line is a rule the server takes, else 1
    /// with the line and what is wrong with it (like `nginx -t`).
    #[arg(long)]
    check: bool,
    /// The client's address (for \i, \x and the 4 and 6 flags).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1",
        conflicts_with = "check"
    )]
    client: IpAddr,
    /// Try an upload (WRQ: the P rules apply, the G rules do not); default a download.
    #[arg(long, conflicts_with = "check")]
    put: bool,
}

/// Runs `wirekit remap`: the trace on standard output, ending with the name served or the
/// refusal. A refused name is an error too (exit status 1), so that scripts can tell.
pub fn run(a: RemapArgs) -> Result<(), String> {
    let path = a.file.display();
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| format!("remap file {path}: cannot read the rules: {e}"))?;
    let rules = Remap::parse(&text).map_err(|e| format!("remap file {path}: {e}"))?;
    let Some(name) = a.name else {
        print(&format!("{path}: {} rules, ok\n", rules.len()));
        return Ok(());
    };
    let direction = if a.put {
        Direction::Write
    } else {
        Direction::Read
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let rule = |line: usize| {
        lines
            .get(line - 1)
            .map_or("", |l| l.trim().trim_end_matches('\r'))
    };
    let shown = |n: &[u8]| format!("\"{}\"", Text::new(n));
    let verb = if a.put { "written" } else { "read" };
    let mut out = format!("{} {verb} by {}:\n", shown(name.as_bytes()), a.client);
    let trace = rules.trace(name.as_bytes(), a.client, direction);
    if trace.steps.is_empty() {
        out.push_str("  no rule took effect\n");
    }
    for step in &trace.steps {
        let what = match &step.action {
            RemapAction::Rewrote(to) => format!("-> {}", shown(to)),
            RemapAction::Ended => "end: no rule after this one runs".to_string(),
            RemapAction::Restarted => "start over from the first rule".to_string(),
            RemapAction::Refused => "refused".to_string(),
            _ => format!("{:?}", step.action),
        };
        let _ = writeln!(out, "  line {}: {}\n    {what}", step.line, rule(step.line));
    }
    let result = match trace.result {
        Ok(to) => {
            let _ = writeln!(out, "served as {}", shown(&to));
            Ok(())
        }
        Err(refusal) => {
            let _ = writeln!(out, "refused ({}): {}", refusal.code, refusal.message);
            Err(format!(
                "{} is refused by the rules",
                shown(name.as_bytes())
            ))
        }
    };
    print(&out);
    result
}

/// Writes `text` to standard output; one that is closed (`| head -1`) is no reason to
/// panic, and no error either: the reader had what it wanted.
fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}
