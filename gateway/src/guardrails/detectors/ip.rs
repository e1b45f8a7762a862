//! IP addresses: dotted IPv4 and IPv6 (full or `::`-compressed), confirmed by the standard
//! library's parsers.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{after, before, longest};

/// Four dotted groups of 1–3 digits, or hex groups with at least two colons.
pub const PATTERN: &str =
    r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}";

/// The longest prefix that parses as an address and is not part of a longer token.
pub fn confirm(hay: &str, start: usize, end: usize) -> Option<usize> {
    if before(hay, start).is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_'))
    {
        return None;
    }
    longest(
        hay,
        start,
        end,
        |b| b.is_ascii_hexdigit() || b == b':',
        |_| true,
        |hay, s, e| {
            let text = &hay[s..e];
            let next = after(hay, e);
            let glued = next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                || (next == Some('.') && hay[e + 1..].starts_with(|c: char| c.is_ascii_digit()));
            if glued {
                return false;
            }
            if text.contains(':') {
                text.bytes().any(|b| b.is_ascii_digit()) && text.parse::<Ipv6Addr>().is_ok()
            } else {
                text.parse::<Ipv4Addr>().is_ok()
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::{Detector, definition, testing::found};

    #[test]
    fn addresses_and_not_times_versions_or_out_of_range_octets() {
        let d = definition(Detector::IpAddress);
        assert_eq!(found(d, "from 192.168.1.20."), ["192.168.1.20"]);
        assert_eq!(
            found(d, "host 2001:db8::8a2e:370:7334 up"),
            ["2001:db8::8a2e:370:7334"]
        );
        assert_eq!(found(d, "loopback ::1"), ["::1"]);
        assert!(found(d, "at 12:30:45").is_empty(), "a time");
        assert!(found(d, "999.1.1.1 and 1.2.3.4.5").is_empty());
        assert!(found(d, "std::vector and a::b").is_empty());
    }
}
