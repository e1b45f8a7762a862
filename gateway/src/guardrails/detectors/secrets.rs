//! Secrets: API keys of well-known shapes and PEM private keys. Every repetition is bounded;
//! the longest match is a private-key block (header, up to 8 KiB of base64, footer), which
//! is what a stream checked for secrets holds back at most.

/// Provider key prefixes with their bodies, and PEM private-key blocks.
pub const PATTERN: &str = concat!(
    r"(?-u:\b)(?:",
    r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,200}",
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}",
    r"|gh[pousr]_[A-Za-z0-9]{36,255}",
    r"|github_pat_[A-Za-z0-9_]{22,255}",
    r"|glpat-[A-Za-z0-9_-]{20,64}",
    r"|xox[abposr]-[A-Za-z0-9-]{10,200}",
    r"|AIza[0-9A-Za-z_-]{35}",
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,200}",
    r")(?-u:\b)",
    r"|-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY-----[A-Za-z0-9+/=\r\n \t]{0,8192}",
    r"(?:-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY-----)?",
);

/// Not glued to a longer identifier.
pub fn confirm(hay: &str, start: usize, end: usize) -> Option<usize> {
    let glued = super::before(hay, start).is_some_and(|c| c == '-' || c == '_')
        || super::after(hay, end).is_some_and(|c| c == '-' || c == '_');
    (!glued).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::super::{Detector, definition, testing::found};

    #[test]
    fn key_shapes_and_private_keys_and_not_ordinary_words() {
        let d = definition(Detector::Secrets);
        let openai = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
        assert_eq!(found(d, &format!("key={openai} ok")), [openai]);
        assert_eq!(
            found(d, "aws AKIAIOSFODNN7EXAMPLE."),
            ["AKIAIOSFODNN7EXAMPLE"]
        );
        let gh = format!("ghp_{}", "a1".repeat(18));
        assert_eq!(found(d, &format!("token {gh}")), [gh.as_str()]);
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq83+/=\n-----END RSA PRIVATE KEY-----";
        assert_eq!(found(d, &format!("here:\n{pem}\nthanks")), [pem]);
        assert!(found(d, "task-management and sk-short and AKIA123").is_empty());
        assert!(found(d, "-----BEGIN PUBLIC KEY-----").is_empty());
    }
}
