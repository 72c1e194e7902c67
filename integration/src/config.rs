//! The plugin's configuration fields, their defaults and their validation.

use crate::error::IntegrationError;

/// The JumpCloud console of the US region, the default `baseUrl`.
pub const DEFAULT_BASE_URL: &str = "https://console.jumpcloud.com";
/// Hosts the plugin talks to by default (US and EU regions).
pub const DEFAULT_EGRESS_HOSTS: &[&str] = &["console.jumpcloud.com", "console.eu.jumpcloud.com"];

pub const API_KEY: &str = "apiKey";
pub const BASE_URL: &str = "baseUrl";
pub const ORG_ID: &str = "orgId";
pub const REQUEST_TIMEOUT: &str = "requestTimeoutSeconds";
/// Per-request time limit (connect, first byte, between bytes) unless configured.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 30;
/// Environment variable of the host that may supply the API key.
pub const API_KEY_ENV: &str = "JUMPCLOUD_API_KEY";

/// A validated configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The administrator's API key, sent as `x-api-key`.
    pub api_key: String,
    /// `http(s)://host[:port]`, without a trailing slash or path.
    pub base_url: String,
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// One organization of a multi-tenant key, or all it can see.
    pub org_id: Option<String>,
    /// How long one request may take to connect, to send its first byte, and between
    /// bytes; a request past it is retried.
    pub request_timeout: std::time::Duration,
}

// The API key must never reach a log line, not even through `{:?}`.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &"[REDACTED]")
            .field("base_url", &self.base_url)
            .field("org_id", &self.org_id)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl Config {
    /// Parses name/value pairs. Unknown names are refused: a typo must not pass silently.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Config, IntegrationError> {
        let mut api_key = None;
        let mut base_url = None;
        let mut org_id = None;
        let mut request_timeout = None;
        for (name, value) in entries {
            let slot = match name {
                API_KEY => &mut api_key,
                BASE_URL => &mut base_url,
                ORG_ID => &mut org_id,
                REQUEST_TIMEOUT => &mut request_timeout,
                other => {
                    return Err(IntegrationError::invalid_config(
                        other,
                        "unknown field; expected apiKey, baseUrl, orgId or requestTimeoutSeconds",
                    ));
                }
            };
            *slot = Some(value.trim().to_owned());
        }

        let api_key = api_key
            .filter(|key| !key.is_empty())
            .ok_or_else(|| IntegrationError::invalid_config(API_KEY, "is required"))?;
        if api_key.chars().any(|c| c.is_control() || c == ' ') {
            return Err(IntegrationError::invalid_config(
                API_KEY,
                "contains spaces or control characters",
            ));
        }
        let base_url = base_url
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let (scheme, authority) = parse_base_url(&base_url)?;
        let org_id = org_id.filter(|id| !id.is_empty());
        if let Some(id) = &org_id
            && !id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(IntegrationError::invalid_config(
                ORG_ID,
                "must be an organization id (letters and digits)",
            ));
        }
        let request_timeout = match request_timeout.filter(|t| !t.is_empty()) {
            None => DEFAULT_REQUEST_TIMEOUT_SECONDS,
            Some(text) => match text.parse::<u64>() {
                Ok(seconds @ 1..=600) => seconds,
                _ => {
                    return Err(IntegrationError::invalid_config(
                        REQUEST_TIMEOUT,
                        "must be a whole number of seconds from 1 to 600",
                    ));
                }
            },
        };
        Ok(Config {
            api_key,
            base_url: format!("{scheme}://{authority}"),
            scheme,
            authority,
            org_id,
            request_timeout: std::time::Duration::from_secs(request_timeout),
        })
    }
}

/// Splits `http(s)://host[:port][/]` into scheme and authority.
fn parse_base_url(url: &str) -> Result<(String, String), IntegrationError> {
    let invalid = |reason: &str| IntegrationError::invalid_config(BASE_URL, reason);
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("must be an http(s) URL, e.g. https://console.jumpcloud.com"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(invalid("must use http or https"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(invalid("has no host"));
    }
    if authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid(
            "must be the console's address only (scheme, host and optional port), without path, query or credentials",
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal has colons inside brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(invalid("has an invalid port"));
    }
    Ok((scheme, authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[(&str, &str)]) -> Result<Config, IntegrationError> {
        Config::from_entries(entries.iter().copied())
    }

    fn rejected_field(result: Result<Config, IntegrationError>) -> String {
        match result {
            Err(IntegrationError::InvalidConfig { field, .. }) => field,
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }

    #[test]
    fn defaults_base_url_to_the_us_console() {
        let config = parse(&[("apiKey", "k")]).unwrap();
        assert_eq!(config.base_url, DEFAULT_BASE_URL);
        assert_eq!(config.authority, "console.jumpcloud.com");
        assert_eq!(config.scheme, "https");
        assert_eq!(config.org_id, None);
    }

    #[test]
    fn accepts_loopback_with_port_and_trailing_slash() {
        let config = parse(&[("apiKey", "k"), ("baseUrl", "http://127.0.0.1:8080/")]).unwrap();
        assert_eq!(config.base_url, "http://127.0.0.1:8080");
        assert_eq!(config.authority, "127.0.0.1:8080");
    }

    #[test]
    fn missing_or_empty_api_key_names_the_field() {
        assert_eq!(rejected_field(parse(&[])), "apiKey");
        assert_eq!(rejected_field(parse(&[("apiKey", "  ")])), "apiKey");
    }

    #[test]
    fn non_url_base_url_names_the_field() {
        for bad in [
            "console.jumpcloud.com",
            "ftp://console.jumpcloud.com",
            "https://",
            "https://console.jumpcloud.com/api",
            "https://user:pw@console.jumpcloud.com",
            "https://host:99999",
        ] {
            assert_eq!(
                rejected_field(parse(&[("apiKey", "k"), ("baseUrl", bad)])),
                "baseUrl",
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_field_is_named() {
        assert_eq!(
            rejected_field(parse(&[("apiKey", "k"), ("apikey", "k")])),
            "apikey"
        );
    }

    #[test]
    fn org_id_must_be_an_id() {
        assert_eq!(
            rejected_field(parse(&[("apiKey", "k"), ("orgId", "a b")])),
            "orgId"
        );
        let config = parse(&[("apiKey", "k"), ("orgId", "60259a2ad81e1a474d4e7c83")]).unwrap();
        assert_eq!(config.org_id.as_deref(), Some("60259a2ad81e1a474d4e7c83"));
    }

    #[test]
    fn request_timeout_defaults_and_bounds() {
        let config = parse(&[("apiKey", "k")]).unwrap();
        assert_eq!(
            config.request_timeout.as_secs(),
            DEFAULT_REQUEST_TIMEOUT_SECONDS
        );
        let config = parse(&[("apiKey", "k"), ("requestTimeoutSeconds", "2")]).unwrap();
        assert_eq!(config.request_timeout.as_secs(), 2);
        for bad in ["0", "601", "1.5", "soon"] {
            assert_eq!(
                rejected_field(parse(&[("apiKey", "k"), ("requestTimeoutSeconds", bad)])),
                "requestTimeoutSeconds",
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = parse(&[("apiKey", "super-secret-key")]).unwrap();
        assert!(!format!("{config:?}").contains("super-secret-key"));
    }
}
