//! `X-Twilio-Signature`: HMAC-SHA1 over the public URL Twilio called plus the sorted form
//! parameters (or, for JSON bodies, the URL carrying `bodySHA256`), Base64. Checked in
//! constant time against both URL forms Twilio's own validators accept.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Twilio-Signature header is missing")]
    Missing,
    #[error("the X-Twilio-Signature does not match this request")]
    Mismatch,
    #[error("the body does not match the bodySHA256 the URL carries")]
    BodyHashMismatch,
    #[error("the request URL cannot be rebuilt: {0}")]
    BadUrl(String),
}

/// The signature Twilio computes for `url` and form `params` with `auth_token`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name, and for repeated names by value (FACTS: "also sort their values").
    sorted.sort();
    let mut data = String::with_capacity(url.len() + params.len() * 24);
    data.push_str(url);
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = match Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this branch cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The two URL forms Twilio's validators try: without an explicit port, and with the
/// scheme's default port. A non-default port is kept as it is.
pub fn url_variants(url: &str) -> Result<Vec<String>, SignatureError> {
    let parsed = url::Url::parse(url).map_err(|e| SignatureError::BadUrl(e.to_string()))?;
    let default_port = match parsed.scheme() {
        "https" => 443,
        "http" => 80,
        other => return Err(SignatureError::BadUrl(format!("scheme {other}"))),
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| SignatureError::BadUrl("no host".into()))?;
    // Path and query exactly as written (the parser may have dropped a default port).
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let rest = &url[path_start..];
    let scheme = parsed.scheme();
    Ok(match parsed.port() {
        // `url` drops a default port on parsing, so an explicit `:443` lands here too.
        None => vec![
            format!("{scheme}://{host}{rest}"),
            format!("{scheme}://{host}:{default_port}{rest}"),
        ],
        // Twilio's validators also strip any explicit port.
        Some(port) => vec![
            format!("{scheme}://{host}:{port}{rest}"),
            format!("{scheme}://{host}{rest}"),
        ],
    })
}

fn matches(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Validates a form-encoded webhook: `url` is the public URL Twilio called.
pub fn validate_form(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?;
    let mut ok = false;
    for candidate in url_variants(url)? {
        // No short-circuit: both forms are always computed.
        ok |= matches(&sign(auth_token, &candidate, params), signature);
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Lowercase hex SHA-256 of `body`.
pub fn body_sha256(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Validates a JSON-body webhook: the URL (with its `bodySHA256` query parameter) is signed
/// with no parameters, and the body must hash to that value.
pub fn validate_json(
    auth_token: &str,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?;
    let parsed = url::Url::parse(url).map_err(|e| SignatureError::BadUrl(e.to_string()))?;
    let claimed = parsed
        .query_pairs()
        .find(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value.into_owned())
        .ok_or(SignatureError::BodyHashMismatch)?;
    let mut ok = false;
    for candidate in url_variants(url)? {
        ok |= matches(&sign(auth_token, &candidate, &[]), signature);
    }
    if !ok {
        return Err(SignatureError::Mismatch);
    }
    if !matches(&body_sha256(body), &claimed.to_ascii_lowercase()) {
        return Err(SignatureError::BodyHashMismatch);
    }
    Ok(())
}

/// Decodes a form body into its pairs, repeated names kept.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The public URL of a request that reached us through a proxy: `X-Forwarded-Proto` and
/// `X-Forwarded-Port` (API Gateway, load balancers) or the scheme Lambda function URLs
/// always have, the `Host` header, and the path and query exactly as received.
pub fn public_url(
    forwarded_proto: Option<&str>,
    host: &str,
    forwarded_port: Option<&str>,
    path_and_query: &str,
) -> String {
    let scheme = forwarded_proto
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .filter(|p| matches!(*p, "http" | "https"))
        // Every AWS front (API Gateway, function URLs, load balancers) says how it was
        // reached; a request without the header came straight to this server, over HTTP.
        .unwrap_or("http");
    let default = if scheme == "https" { "443" } else { "80" };
    let host_has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()));
    match forwarded_port.map(str::trim) {
        Some(port) if !host_has_port && port != default && !port.is_empty() => {
            format!("{scheme}://{host}:{port}{path_and_query}")
        }
        _ => format!("{scheme}://{host}{path_and_query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";

    fn vector_params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// The vectors of FACTS.md (Twilio's own validator test suite).
    #[test]
    fn twilios_vectors_sign_and_validate() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            sign(TOKEN, url, &vector_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            sign(
                TOKEN,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &vector_params()
            ),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        assert_eq!(
            sign(
                TOKEN,
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                &vector_params()
            ),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        );
        assert_eq!(
            sign(
                TOKEN,
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                &vector_params()
            ),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        );
        let repeated: Vec<(String, String)> = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(sign(TOKEN, url, &repeated), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");

        // Either URL form validates, whichever Twilio signed.
        for signature in [
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
        ] {
            assert_eq!(
                validate_form(TOKEN, url, &vector_params(), Some(signature)),
                Ok(())
            );
            assert_eq!(
                validate_form(
                    TOKEN,
                    "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                    &vector_params(),
                    Some(signature)
                ),
                Ok(())
            );
        }
        assert_eq!(
            validate_form(
                TOKEN,
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                &vector_params(),
                Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")
            ),
            Ok(())
        );
        // Reached at a non-default port, the port-less form Twilio's validators try is taken;
        // the other scheme's signature is not.
        assert_eq!(
            validate_form(
                TOKEN,
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                &vector_params(),
                Some(&sign(
                    TOKEN,
                    "http://mycompany.com/myapp.php?foo=1&bar=2",
                    &vector_params()
                ))
            ),
            Ok(())
        );
        assert_eq!(
            validate_form(
                TOKEN,
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                &vector_params(),
                Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_requests_are_refused() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        let mut params = vector_params();
        params[2].1 = "9999".into();
        assert_eq!(
            validate_form(TOKEN, url, &params, Some(good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            validate_form(
                TOKEN,
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                &vector_params(),
                Some(good)
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            validate_form("54321", url, &vector_params(), Some(good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            validate_form(TOKEN, url, &vector_params(), None),
            Err(SignatureError::Missing)
        );
        let mut extra = vector_params();
        extra.push(("CallStatus".into(), "completed".into()));
        assert_eq!(
            validate_form(TOKEN, url, &extra, Some(good)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_json_variant_signs_the_url_and_checks_the_body_hash() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = body_sha256(body);
        assert_eq!(
            hash,
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let url = format!("https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={hash}");
        let signature = "a9nBmqA0ju/hNViExpshrM61xv4=";
        assert_eq!(sign(TOKEN, &url, &[]), signature);
        assert_eq!(validate_json(TOKEN, &url, body, Some(signature)), Ok(()));
        assert_eq!(
            validate_json(
                TOKEN,
                &url,
                br#"{"property": "evil", "boolean": true}"#,
                Some(signature)
            ),
            Err(SignatureError::BodyHashMismatch)
        );
        assert_eq!(
            validate_json(
                TOKEN,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                body,
                Some(signature)
            ),
            Err(SignatureError::BodyHashMismatch)
        );
    }

    #[test]
    fn public_urls_are_rebuilt_behind_proxies() {
        assert_eq!(
            public_url(
                Some("https"),
                "abc.execute-api.us-east-1.amazonaws.com",
                Some("443"),
                "/twilio/status?tenant=acme"
            ),
            "https://abc.execute-api.us-east-1.amazonaws.com/twilio/status?tenant=acme"
        );
        assert_eq!(
            public_url(
                Some("https"),
                "xyz.lambda-url.us-east-1.on.aws",
                None,
                "/voice"
            ),
            "https://xyz.lambda-url.us-east-1.on.aws/voice"
        );
        assert_eq!(
            public_url(None, "127.0.0.1:8000", None, "/voice"),
            "http://127.0.0.1:8000/voice"
        );
        assert_eq!(
            public_url(Some("http"), "127.0.0.1:8000", Some("8000"), "/voice"),
            "http://127.0.0.1:8000/voice"
        );
        assert_eq!(
            public_url(Some("https,http"), "example.com", Some("8443"), "/v"),
            "https://example.com:8443/v"
        );
        let pairs = form_pairs(b"To=%2B18005551212&Digits=1&Digits=2");
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[0].1, "+18005551212");
    }
}
