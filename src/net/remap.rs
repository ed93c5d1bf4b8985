//! Filename remapping rules, in the format of tftp-hpa's `--map-file` (`-m`).
//!
//! A rule file holds one rule a line: `FLAGS REGEX [REPLACEMENT]`, fields separated by
//! whitespace, `#` starting a comment, a backslash escaping whitespace or `#`. Rules run from
//! the top on the name the client asked for, each on the result of the ones before; the name
//! that comes out is then checked and confined like any requested name. See [`Remap`].

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};

use crate::tftp::server::Refusal;
use crate::tftp::{Direction, ErrorCode};

/// Rules tried, and repeats of `g` rules, before a name's remapping is given up, as
/// tftp-hpa's `--map-steps` default: rules that restart (`s`) or repeat (`g`) forever are
/// stopped, and the request refused.
const MAX_STEPS: usize = 4096;

/// Longest name a rewrite may produce on the way; a longer one refuses the request. Far
/// above the longest name the server accepts (1024 bytes), so that no sensible rule set is
/// cut short, yet `rg (.*) \0\0` cannot grow a name without bound.
const MAX_LEN: usize = 4096;

/// Groups a replacement can name: `\0` to `\9`.
const GROUPS: usize = 10;

/// What a rule does, from the letters of its first field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flags {
    /// `r`: replace the match by the replacement.
    rewrite: bool,
    /// `g`: repeat the replacement until the regex no longer matches.
    global: bool,
    /// `e`: stop after this rule if it matched.
    end: bool,
    /// `s`: start over from the first rule if it matched.
    restart: bool,
    /// `a`: refuse the request if it matched.
    abort: bool,
    /// `~`: the rule applies when the regex does *not* match.
    inverse: bool,
    /// `G`: reads (RRQ) only.
    get_only: bool,
    /// `P`: writes (WRQ) only.
    put_only: bool,
    /// `4`: IPv4 clients only.
    ipv4_only: bool,
    /// `6`: IPv6 clients only.
    ipv6_only: bool,
}

#[derive(Clone, Debug)]
struct Rule {
    /// Line in the rule file, from 1.
    line: usize,
    flags: Flags,
    regex: Regex,
    /// The replacement as written, escapes and all (expanded at each match).
    replacement: Vec<u8>,
}

/// Filename remapping rules: a rule file in the format of tftp-hpa's `--map-file` (`-m`),
/// run by the server's [`DirPolicy`](super::DirPolicy) on every requested name before the
/// name is checked and opened under the root.
///
/// Each line is `FLAGS REGEX [REPLACEMENT]`; `#` starts a comment. `REGEX` is an extended
/// regular expression, matched against the name's bytes (ASCII classes and case, as
/// tftp-hpa in the C locale). `FLAGS` is any combination of:
///
/// | flag | meaning |
/// |---|---|
/// | `r` | replace the part of the name the regex matched by `REPLACEMENT` |
/// | `g` | with `r`: repeat the replacement, searching from the start each time, until the regex no longer matches |
/// | `i` | match case-insensitively |
/// | `e` | if the rule matched, stop: the name is final |
/// | `s` | if the rule matched, start over from the first rule |
/// | `a` | if the rule matched, refuse the request with ERROR 2, and `REPLACEMENT` (expanded) as its message if there is one |
/// | `G` / `P` | the rule applies to reads (RRQ) / writes (WRQ) only |
/// | `4` / `6` | the rule applies to IPv4 / IPv6 clients only |
/// | `~` | the rule applies when the regex does *not* match (not with `r`) |
///
/// `r` cannot be combined with `~` or `a`, nor `a` with `e` or `s`, nor `e` with `s`. In
/// `REPLACEMENT`, `\0` is the whole match, `\1` to `\9` the parenthesized groups, `\i` the
/// client's IP address (`192.0.2.169`, `2001:db8::1`), `\x` the same in hexadecimal
/// (`C00002A9`), `\U` and `\L` turn what follows to upper or lower case and `\E` ends that,
/// `\\` is a backslash, and a backslash before any other character (whitespace, `#`)
/// stands for that character.
///
/// A rule set that runs more than 4096 steps (rules tried, plus repeats of `g` rules), or
/// grows the name past 4096 bytes, refuses the request.
///
/// ```
/// use wirekit::net::Remap;
/// use wirekit::tftp::Direction;
///
/// let rules = Remap::parse(r"
///     rg \\ /                       # Windows clients' backslashes
///     r  ^/                         # a leading / means the root
///     ri ^pxelinux\.cfg/(.*) pxelinux.cfg/\i/\1
///     a  ^private/ not\ for\ \i
/// ")?;
/// let peer = "192.0.2.7".parse()?;
/// let name = rules.apply(br"\pxelinux.cfg\default", peer, Direction::Read);
/// assert_eq!(name.as_deref(), Ok(&b"pxelinux.cfg/192.0.2.7/default"[..]));
/// let refused = rules.apply(b"/private/key", peer, Direction::Read).unwrap_err();
/// assert_eq!(refused.message, "not for 192.0.2.7");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Not supported, each refused when the file is read: the labels, jumps (`j`), `E` and `gg`
/// of tftp-hpa after 5.2.
#[derive(Clone, Debug, Default)]
pub struct Remap {
    rules: Arc<[Rule]>,
}

/// Why a rule file was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum RemapError {
    /// The file could not be read (or is not UTF-8).
    Read(io::Error),
    /// A line is not a valid rule.
    Rule {
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for RemapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemapError::Read(e) => write!(f, "cannot read the rules: {e}"),
            RemapError::Rule { line, reason } => write!(f, "line {line}: {reason}"),
        }
    }
}

impl std::error::Error for RemapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RemapError::Read(e) => Some(e),
            RemapError::Rule { .. } => None,
        }
    }
}

impl Remap {
    /// Reads a rule file.
    pub fn load(path: impl AsRef<Path>) -> Result<Remap, RemapError> {
        let text = std::fs::read_to_string(path).map_err(RemapError::Read)?;
        Remap::parse(&text)
    }

    /// Parses rules, one a line.
    pub fn parse(rules: &str) -> Result<Remap, RemapError> {
        let mut parsed = Vec::new();
        for (i, line) in rules.split('\n').enumerate() {
            let line_no = i + 1;
            // As tftp-hpa reads lines: carriage returns and NULs are dropped.
            let line: Vec<u8> = line.bytes().filter(|&b| b != b'\r' && b != 0).collect();
            if let Some(rule) = parse_line(&line)
                .map_err(|reason| RemapError::Rule {
                    line: line_no,
                    reason,
                })?
                .map(|(flags, regex, replacement)| Rule {
                    line: line_no,
                    flags,
                    regex,
                    replacement,
                })
            {
                parsed.push(rule);
            }
        }
        Ok(Remap {
            rules: parsed.into(),
        })
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules (every name is left as it is).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs the rules on `name`, asked for by `peer` for a read or a write. Returns the name
    /// to serve, or the refusal (ERROR 2) of an `a` rule, of a rule set that runs too long,
    /// or of a name grown too long. An IPv4 address mapped into IPv6 counts as IPv4, for
    /// `\i`, `\x` and the `4` and `6` flags.
    pub fn apply<'a>(
        &self,
        name: &'a [u8],
        peer: IpAddr,
        direction: Direction,
    ) -> Result<Cow<'a, [u8]>, Refusal> {
        self.trace(name, peer, direction).result
    }

    /// Like [`apply`](Self::apply), also saying which rules made the result: for a log
    /// that tells an operator which line of the file to look at.
    ///
    /// ```
    /// use wirekit::net::Remap;
    /// use wirekit::tftp::Direction;
    ///
    /// let rules = Remap::parse("r ^/\nr ^(pxelinux\\.cfg/)(.*) \\1\\i/\\2\n")?;
    /// let peer = "192.0.2.7".parse()?;
    /// let traced = rules.trace(b"/pxelinux.cfg/default", peer, Direction::Read);
    /// assert_eq!(traced.result.as_deref(), Ok(&b"pxelinux.cfg/192.0.2.7/default"[..]));
    /// assert_eq!(traced.rules, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trace<'a>(&self, name: &'a [u8], peer: IpAddr, direction: Direction) -> Remapped<'a> {
        let mut rules = Vec::new();
        let result = self.run(name, peer, direction, &mut rules);
        Remapped { result, rules }
    }

    fn run<'a>(
        &self,
        name: &'a [u8],
        peer: IpAddr,
        direction: Direction,
        used: &mut Vec<usize>,
    ) -> Result<Cow<'a, [u8]>, Refusal> {
        let peer = peer.to_canonical();
        // A rule that rewrote several times (`g`, or again after `s`) is named once.
        let mut note = |line: usize| {
            if !used.contains(&line) {
                used.push(line);
            }
        };
        let mut current = Cow::Borrowed(name);
        let mut steps = 0usize;
        let mut step = || {
            steps += 1;
            if steps > MAX_STEPS {
                Err(access("remap rules ran too long"))
            } else {
                Ok(())
            }
        };
        let mut next = 0;
        while let Some(rule) = self.rules.get(next) {
            next += 1;
            if !rule.applies(peer, direction) {
                continue;
            }
            step()?;
            let groups = captures(&rule.regex, &current);
            if groups.is_some() == rule.flags.inverse {
                continue;
            }
            if rule.flags.rewrite {
                // `r~` is refused when parsing: a rewriting rule matched.
                let mut groups = groups.expect("a rewrite rule runs only on a match");
                note(rule.line);
                loop {
                    let rewritten = substitute(&rule.replacement, &current, &groups, peer);
                    if rewritten.len() > MAX_LEN {
                        return Err(access("remapped filename too long"));
                    }
                    current = Cow::Owned(rewritten);
                    if !rule.flags.global {
                        break;
                    }
                    match captures(&rule.regex, &current) {
                        Some(g) => groups = g,
                        None => break,
                    }
                    step()?;
                }
            } else if rule.flags.abort {
                note(rule.line);
                let groups = groups.unwrap_or_default();
                let message = expand(&rule.replacement, &current, &groups, peer);
                let message = if message.is_empty() {
                    Cow::Owned(format!("refused by remap rule (line {})", rule.line))
                } else {
                    Cow::Owned(String::from_utf8_lossy(&message).into_owned())
                };
                return Err(access(message));
            }
            if rule.flags.end {
                break;
            }
            if rule.flags.restart {
                next = 0;
            }
        }
        Ok(current)
    }
}

/// What [`Remap::trace`] made of a name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Remapped<'a> {
    /// The name to serve, or the refusal, as [`Remap::apply`] returns them.
    pub result: Result<Cow<'a, [u8]>, Refusal>,
    /// The lines (from 1) of the rules that rewrote the name, in the order they first did,
    /// and of the `a` rule that refused it. Empty when no rule changed anything.
    pub rules: Vec<usize>,
}

impl Rule {
    fn applies(&self, peer: IpAddr, direction: Direction) -> bool {
        let f = &self.flags;
        !(f.get_only && direction != Direction::Read
            || f.put_only && direction != Direction::Write
            || f.ipv4_only && !peer.is_ipv4()
            || f.ipv6_only && !peer.is_ipv6())
    }
}

fn access(message: impl Into<Cow<'static, str>>) -> Refusal {
    Refusal::new(ErrorCode::AccessViolation, message)
}

/// The ranges of groups 0 to 9 of the first match of `regex` in `hay`, if it matches.
fn captures(regex: &Regex, hay: &[u8]) -> Option<Vec<Option<Range<usize>>>> {
    let caps = regex.captures(hay)?;
    Some(
        (0..GROUPS)
            .map(|i| caps.get(i).map(|m| m.range()))
            .collect(),
    )
}

/// `hay` with its match (group 0) replaced by the expansion of `replacement`.
fn substitute(
    replacement: &[u8],
    hay: &[u8],
    groups: &[Option<Range<usize>>],
    peer: IpAddr,
) -> Vec<u8> {
    let whole = groups
        .first()
        .cloned()
        .flatten()
        .expect("group 0 of a match is set");
    let mut out = hay[..whole.start].to_vec();
    out.extend_from_slice(&expand(replacement, hay, groups, peer));
    out.extend_from_slice(&hay[whole.end..]);
    out
}

#[derive(Clone, Copy)]
enum Case {
    Keep,
    Upper,
    Lower,
}

/// Expands the escapes of a replacement: groups, the peer's address, case changes.
fn expand(
    replacement: &[u8],
    hay: &[u8],
    groups: &[Option<Range<usize>>],
    peer: IpAddr,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(replacement.len());
    let mut case = Case::Keep;
    let push = |out: &mut Vec<u8>, case: Case, bytes: &[u8]| {
        out.extend(bytes.iter().map(|&b| match case {
            Case::Keep => b,
            Case::Upper => b.to_ascii_uppercase(),
            Case::Lower => b.to_ascii_lowercase(),
        }))
    };
    let mut bytes = replacement.iter().copied();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            push(&mut out, case, &[b]);
            continue;
        }
        match bytes.next() {
            // A lone backslash at the end stands for itself.
            None => out.push(b'\\'),
            Some(d @ b'0'..=b'9') => {
                if let Some(Some(r)) = groups.get(usize::from(d - b'0')) {
                    push(&mut out, case, &hay[r.clone()]);
                }
            }
            Some(b'U') => case = Case::Upper,
            Some(b'L') => case = Case::Lower,
            Some(b'E') => case = Case::Keep,
            Some(b'i') => push(&mut out, case, peer.to_string().as_bytes()),
            Some(b'x') => push(&mut out, case, hex_address(peer).as_bytes()),
            Some(b'\\') => out.push(b'\\'),
            // Whitespace, `#`, anything else: the character itself.
            Some(c) => push(&mut out, case, &[c]),
        }
    }
    out
}

/// The address in upper-case hex, 8 digits for IPv4 and 32 for IPv6.
fn hex_address(ip: IpAddr) -> String {
    let octets: Vec<u8> = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    octets.iter().map(|b| format!("{b:02X}")).collect()
}

/// The next field of a line: leading whitespace skipped, up to unescaped whitespace or `#`
/// (a comment); escapes are kept for the regex compiler and the replacement. `None` at the
/// end of the line or at a comment.
fn field(rest: &mut &[u8]) -> Option<Vec<u8>> {
    let s = *rest;
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let mut end = start;
    let mut escaped = false;
    while let Some(&b) = s.get(end) {
        if !escaped && (b.is_ascii_whitespace() || b == b'#') {
            break;
        }
        // Two backslashes leave the next character unescaped.
        escaped = !escaped && b == b'\\';
        end += 1;
    }
    *rest = &s[end..];
    (end > start).then(|| s[start..end].to_vec())
}

/// One line: `None` for a blank or comment line, else the rule's flags, regex and
/// replacement.
#[allow(clippy::type_complexity)]
fn parse_line(mut line: &[u8]) -> Result<Option<(Flags, Regex, Vec<u8>)>, String> {
    let Some(letters) = field(&mut line) else {
        return Ok(None);
    };
    if letters.first() == Some(&b':') {
        return Err("labels (tftp-hpa 5.3) are not supported".into());
    }
    let mut flags = Flags::default();
    let mut case_insensitive = false;
    for &c in &letters {
        match c {
            b'r' => flags.rewrite = true,
            b'g' if flags.global => {
                return Err("'gg' (tftp-hpa 5.3) is not supported".into());
            }
            b'g' => flags.global = true,
            b'i' => case_insensitive = true,
            b'e' => flags.end = true,
            b's' => flags.restart = true,
            b'a' => flags.abort = true,
            b'~' => flags.inverse = true,
            b'G' => flags.get_only = true,
            b'P' => flags.put_only = true,
            b'4' => flags.ipv4_only = true,
            b'6' => flags.ipv6_only = true,
            b'E' | b'j' => {
                return Err(format!(
                    "flag '{}' (tftp-hpa 5.3) is not supported",
                    char::from(c)
                ));
            }
            _ => {
                return Err(format!(
                    "invalid flag {:?} in {:?}",
                    char::from(c),
                    String::from_utf8_lossy(&letters)
                ));
            }
        }
    }
    let combos = [
        (flags.rewrite && flags.inverse, "r and ~"),
        (flags.rewrite && flags.abort, "r and a"),
        (flags.abort && flags.restart, "a and s"),
        (flags.abort && flags.end, "a and e"),
        (flags.end && flags.restart, "e and s"),
    ];
    if let Some((_, which)) = combos.iter().find(|(bad, _)| *bad) {
        return Err(format!("flags {which} cannot be combined"));
    }
    // `g` only means something to a rewrite.
    flags.global &= flags.rewrite;
    let Some(pattern) = field(&mut line) else {
        return Err("no regex after the flags".into());
    };
    let regex = compile(&pattern, case_insensitive)?;
    let replacement = field(&mut line).unwrap_or_default();
    Ok(Some((flags, regex, replacement)))
}

/// Compiles a regex field. POSIX leaves a backslash before whitespace to the
/// implementation (glibc: the character itself); the regex crate refuses it, so it is
/// written as a hex escape.
fn compile(pattern: &[u8], case_insensitive: bool) -> Result<Regex, String> {
    let pattern = std::str::from_utf8(pattern).map_err(|_| "the regex is not UTF-8".to_string())?;
    let mut translated = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            translated.push(c);
            continue;
        }
        match chars.next() {
            Some(w) if w.is_ascii_whitespace() => {
                translated.push_str(&format!("\\x{:02x}", u32::from(w)));
            }
            Some(other) => {
                translated.push('\\');
                translated.push(other);
            }
            None => translated.push('\\'),
        }
    }
    RegexBuilder::new(&translated)
        .case_insensitive(case_insensitive)
        .unicode(false)
        .build()
        .map_err(|e| format!("bad regex {pattern:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Vec<String> {
        let mut rest = line.as_bytes();
        let mut out = Vec::new();
        while let Some(f) = field(&mut rest) {
            out.push(String::from_utf8(f).unwrap());
        }
        out
    }

    #[test]
    fn fields_split_on_unescaped_whitespace_and_stop_at_comments() {
        assert_eq!(fields("  r  ^/  x # comment"), ["r", "^/", "x"]);
        assert_eq!(fields(r"r a\ b c\#d"), ["r", r"a\ b", r"c\#d"]);
        assert_eq!(fields(r"r a\\ b"), ["r", r"a\\", "b"]);
        assert_eq!(fields("# only a comment"), Vec::<String>::new());
        assert_eq!(fields("r x#y"), ["r", "x"]);
        assert_eq!(fields(""), Vec::<String>::new());
    }

    #[test]
    fn expansion_escapes() {
        let peer: IpAddr = "192.0.2.169".parse().unwrap();
        let hay = b"Ab-Cd";
        let groups = vec![Some(0..5), Some(0..2), None, Some(3..5)];
        let e = |r: &str| String::from_utf8(expand(r.as_bytes(), hay, &groups, peer)).unwrap();
        assert_eq!(e(r"\1/\3/\2"), "Ab/Cd/");
        assert_eq!(e(r"\U\1\E\L\3\E!"), "ABcd!");
        assert_eq!(e(r"\i \x"), "192.0.2.169 C00002A9");
        assert_eq!(e(r"a\\b\#c\ d\qe\"), r"a\b#c dqe\");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            String::from_utf8(expand(br"\i \x", hay, &groups, v6)).unwrap(),
            "2001:db8::1 20010DB8000000000000000000000001"
        );
    }

    #[test]
    fn regex_escapes_of_whitespace_compile() {
        let r = compile(br"a\ b\	c\#", false).unwrap();
        assert!(r.is_match(b"a b\tc#"));
    }
}
