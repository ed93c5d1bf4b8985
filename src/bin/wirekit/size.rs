//! Sizes as an operator types them: `1500`, `64K`, `10M`, `4MiB`, `1 GiB`.
//!
//! K, M, G and T are powers of 1000, as in SI (and as disks are sold); KiB, MiB, GiB and
//! TiB powers of 1024. A trailing `B` is allowed (`10MB`), and case does not matter.

/// The units, as every message about sizes says them.
macro_rules! units {
    () => {
        "K, M, G, T are powers of 1000 (10M = 10000000 bytes); KiB, MiB, GiB, TiB powers of \
         1024 (4MiB = 4194304 bytes)"
    };
}

/// What `--help` says of sizes, after the options.
pub const HELP: &str = concat!(
    "BYTES: a whole number of bytes with an optional unit: ",
    units!(),
    "; a trailing B, and case, do not matter."
);

/// The multipliers, longest suffix first so that `KiB` is not read as `K` and junk.
const UNITS: [(&str, u64); 12] = [
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("k", 1_000),
    ("m", 1_000_000),
    ("g", 1_000_000_000),
    ("t", 1_000_000_000_000),
];

/// A size in bytes, up to `u64::MAX`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let trimmed = s.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let unit = unit.trim_start().to_ascii_lowercase();
    let expected = || {
        concat!(
            "expected a whole number of bytes, with an optional unit (1500, 64K, 10M, 4MiB); ",
            units!()
        )
        .to_string()
    };
    if digits.is_empty() {
        return Err(expected());
    }
    let multiplier = match unit.as_str() {
        "" | "b" => 1,
        u => {
            UNITS
                .iter()
                .find(|(name, _)| *name == u)
                .ok_or_else(expected)?
                .1
        }
    };
    let too_large = || format!("{s} is more than the largest size, {} bytes", u64::MAX);
    let n: u64 = digits.parse().map_err(|_| too_large())?;
    n.checked_mul(multiplier).ok_or_else(too_large)
}

/// A size in bytes that fits 32 bits (4 GiB less one byte).
pub fn parse_size_u32(s: &str) -> Result<u32, String> {
    let n = parse_size(s)?;
    u32::try_from(n).map_err(|_| format!("{s} is more than the largest here, {} bytes", u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        for (text, bytes) in [
            ("0", 0),
            ("1500", 1500),
            ("1500B", 1500),
            ("64K", 64_000),
            ("64k", 64_000),
            ("64KB", 64_000),
            ("64KiB", 65_536),
            ("64kib", 65_536),
            ("10M", 10_000_000),
            ("4MiB", 4 << 20),
            ("1 GiB", 1 << 30),
            ("1G", 1_000_000_000),
            ("2T", 2_000_000_000_000),
            ("1TiB", 1 << 40),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn garbage_and_overflow_are_refused() {
        for bad in [
            "", "M", "10X", "10MM", "-1", "1.5M", "10 M B", "0x10", "K10",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("expected a whole number"), "{bad}: {e}");
        }
        for big in ["18446744073709551616", "20000000T", "16777216TiB"] {
            let e = parse_size(big).unwrap_err();
            assert!(e.contains("more than the largest size"), "{big}: {e}");
        }
        assert!(parse_size_u32("4GiB").unwrap_err().contains("4294967295"));
        assert_eq!(parse_size_u32("4MiB"), Ok(4 << 20));
    }
}
