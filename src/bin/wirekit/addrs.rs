//! Addresses as an operator types them: `HOST`, `HOST:PORT`, `[V6]:PORT`, a bare IPv6
//! address, and for `--listen` also `:PORT`, every address (tftp-hpa's `-a :69`). A host
//! may be a name, which stands for every address it resolves to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::str::FromStr;

/// The TFTP port, where a port is left out.
pub const TFTP_PORT: u16 = 69;

/// A host and maybe a port, as typed; resolved only when used, so that a name is looked
/// up once the program runs, not while the arguments are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// As typed, for messages.
    text: String,
    host: Host,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    /// Nothing before the `:`: every address of the host.
    Any,
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<HostPort, String> {
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("{p:?} is not a port (0 to 65535)"))
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or("an IPv6 address in [ ] lacks its ]")?;
            let port = match after {
                "" => None,
                p => Some(port(p.strip_prefix(':').ok_or("expected :PORT after ]")?)?),
            };
            (inside, port)
        } else if s.parse::<Ipv6Addr>().is_ok() {
            // A bare IPv6 address: its colons are not a port's.
            (s, None)
        } else {
            match s.rsplit_once(':') {
                Some((host, p)) => (host, Some(port(p)?)),
                None => (s, None),
            }
        };
        let host = if host.is_empty() {
            Host::Any
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            Host::Ip(ip)
        } else if host.contains(char::is_whitespace) || host.contains(['/', '[', ']']) {
            return Err(format!("{host:?} is neither an address nor a host name"));
        } else {
            Host::Name(host.to_string())
        };
        Ok(HostPort {
            text: s.to_string(),
            host,
            port,
        })
    }
}

impl HostPort {
    /// For clap: `HOST[:PORT]` with a syntax error said at once.
    pub fn parse(s: &str) -> Result<HostPort, String> {
        s.parse()
    }

    /// The port, 69 unless given.
    fn port(&self) -> u16 {
        self.port.unwrap_or(TFTP_PORT)
    }

    /// Every address the host stands for, in the order the resolver gives them, without
    /// repeats. `:PORT` is the IPv4 and, where the host has IPv6, the IPv6 wildcard.
    fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let port = self.port();
        let mut addrs: Vec<SocketAddr> = match &self.host {
            Host::Any => every_address(port),
            Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            Host::Name(name) => (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {name}: {e}"))?
                .collect(),
        };
        dedup(&mut addrs);
        if addrs.is_empty() {
            return Err(format!("{} resolves to no address", self.text));
        }
        Ok(addrs)
    }
}

/// `0.0.0.0:PORT` and `[::]:PORT`, the server's sockets being IPv6-only so that the two
/// can be bound side by side, as tftp-hpa binds both for `-a :PORT`. A kernel without
/// IPv6 (booted with `ipv6.disable=1`) cannot open an IPv6 socket: IPv4 alone is every
/// address there.
fn every_address(port: u16) -> Vec<SocketAddr> {
    let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
    let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
    // Port 0 asks nothing of the real port, and the probe is closed at once.
    let has_ipv6 = UdpSocket::bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)).is_ok();
    if has_ipv6 { vec![v4, v6] } else { vec![v4] }
}

/// Drops repeats, keeping the first of each.
fn dedup(addrs: &mut Vec<SocketAddr>) {
    let mut seen = Vec::with_capacity(addrs.len());
    addrs.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
}

/// The server addresses a client tries, in turn: every address `server` resolves to, on
/// port 69 unless it names one.
pub fn server_addresses(server: &HostPort) -> Result<Vec<SocketAddr>, String> {
    if server.host == Host::Any {
        return Err(format!("{server}: no server address before the port"));
    }
    server.resolve()
}

/// The request addresses `--listen` asks for: every address of each, without repeats (so
/// `--listen localhost:69 --listen 127.0.0.1:69` binds 127.0.0.1:69 once). A port of 0
/// takes any free port, for each address on its own.
///
/// A name stands for those of its addresses this host has: `localhost` is `127.0.0.1` and
/// `::1` where the loopback has IPv6, `127.0.0.1` alone where it has not, though
/// `/etc/hosts` names both. An address typed as one is taken as it is, and binding it says
/// what is wrong.
///
/// An address the wildcard of its family already covers on the same port is refused with
/// that said: the kernel would refuse it with "address in use", which points at another
/// program.
pub fn listen_addresses(specs: &[HostPort]) -> Result<Vec<SocketAddr>, String> {
    let mut addrs = Vec::new();
    for spec in specs {
        let mut resolved = spec
            .resolve()
            .map_err(|e| format!("--listen {spec}: {e}"))?;
        if let Host::Name(name) = &spec.host {
            let all = resolved.clone();
            // Bound on a free port, not the one asked for: another server may hold that.
            resolved.retain(|a| UdpSocket::bind(SocketAddr::new(a.ip(), 0)).is_ok());
            if resolved.is_empty() {
                let all: Vec<String> = all.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "--listen {spec}: {name} resolves to {}, none of them an address of this \
                     host",
                    all.join(", ")
                ));
            }
        }
        addrs.extend(resolved);
    }
    dedup(&mut addrs);
    for a in &addrs {
        let covering = addrs.iter().find(|w| {
            w.ip().is_unspecified()
                && !a.ip().is_unspecified()
                && w.is_ipv4() == a.is_ipv4()
                && w.port() == a.port()
                && a.port() != 0
        });
        if let Some(w) = covering {
            return Err(format!(
                "--listen: {a} is one of the addresses {w} listens on already; keep one of \
                 the two"
            ));
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> (Host, Option<u16>) {
        let hp: HostPort = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        (hp.host, hp.port)
    }

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }

    #[test]
    fn what_an_operator_types() {
        assert_eq!(parsed(":69"), (Host::Any, Some(69)));
        assert_eq!(parsed("0.0.0.0:69"), (ip("0.0.0.0"), Some(69)));
        assert_eq!(parsed("[::]:69"), (ip("::"), Some(69)));
        assert_eq!(parsed("[::1]"), (ip("::1"), None));
        assert_eq!(parsed("::1"), (ip("::1"), None));
        assert_eq!(parsed("fe80::1"), (ip("fe80::1"), None));
        assert_eq!(parsed("192.0.2.1"), (ip("192.0.2.1"), None));
        assert_eq!(
            parsed("localhost:6969"),
            (Host::Name("localhost".into()), Some(6969))
        );
        assert_eq!(
            parsed("tftp.example"),
            (Host::Name("tftp.example".into()), None)
        );
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "host:", "host:69x", ":70000", "[::1", "[::1]69", "[::1]:x", "a b:69",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad}");
        }
    }

    #[test]
    fn repeats_are_dropped_and_covered_addresses_refused() {
        let specs =
            |list: &[&str]| -> Vec<HostPort> { list.iter().map(|s| s.parse().unwrap()).collect() };
        let addrs = listen_addresses(&specs(&["127.0.0.1:69", "127.0.0.1:69", "[::1]:69"]));
        assert_eq!(
            addrs.unwrap(),
            ["127.0.0.1:69".parse().unwrap(), "[::1]:69".parse().unwrap()] as [SocketAddr; 2]
        );
        let e = listen_addresses(&specs(&["0.0.0.0:69", "127.0.0.1:69"])).unwrap_err();
        assert!(
            e.contains("127.0.0.1:69") && e.contains("0.0.0.0:69"),
            "{e}"
        );
        // Another port, or another family, is no overlap.
        assert!(listen_addresses(&specs(&["0.0.0.0:69", "127.0.0.1:6969", "[::1]:69"])).is_ok());
        assert!(server_addresses(&":69".parse().unwrap()).is_err());
    }
}
