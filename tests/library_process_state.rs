//! A library leaves process-wide state alone unless asked: binding a `Server` keeps the
//! descriptor limit it found; `net::raise_descriptor_limit` is how an application asks.
//! (A file of its own: the limit belongs to the whole test process.)
#![cfg(unix)]

mod common;

use common::files::TempDir;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use wirekit::net::{DirConfig, Server, ServerConfig, raise_descriptor_limit};

#[test]
fn binding_a_server_leaves_the_descriptor_limit_alone() {
    let limit = getrlimit(Resource::Nofile);
    let (Some(hard), Some(soft)) = (limit.maximum, limit.current) else {
        eprintln!("skipping: no descriptor limit to lower");
        return;
    };
    let lowered = soft.min(hard).min(512);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(lowered),
            maximum: Some(hard),
        },
    )
    .unwrap();
    let root = TempDir::new("process-state");
    let config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    let server = Server::bind(config, DirConfig::new(root.path())).unwrap();
    assert_eq!(getrlimit(Resource::Nofile).current, Some(lowered));
    drop(server);
    assert_eq!(raise_descriptor_limit(), Some(hard));
    assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
}
