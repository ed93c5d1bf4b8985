//! The `wirekit` command-line program.

fn main() {
    eprintln!("wirekit: the TFTP server and client are not built yet");
    std::process::exit(2);
}
