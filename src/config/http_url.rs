//! The http(s) URLs the config takes (endpoints, the trace collector), and
//! how error messages show them: never with their credentials.

use http::Uri;

use super::file::REDACTED;

/// An absolute `http` or `https` URL with a host and no `user:password@`
/// (credentials in a URL end up in logs); `credentials_advice` says where
/// they go instead.
pub fn parse_http_url(text: &str, credentials_advice: &str) -> Result<Uri, String> {
    let shown = without_credentials(text);
    let uri = text
        .parse::<Uri>()
        .ok()
        .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")))
        .filter(|uri| uri.host().is_some_and(|host| !host.is_empty()))
        .ok_or_else(|| format!("`{shown}` is not an absolute http(s) URL"))?;
    if uri
        .authority()
        .is_some_and(|authority| authority.as_str().contains('@'))
    {
        return Err(format!(
            "`{shown}`: credentials in the URL are not supported; {credentials_advice}"
        ));
    }
    Ok(uri)
}

/// `text` with any `user:password@` of its authority replaced by
/// `<redacted>@`, so a message about a bad URL does not repeat a password.
pub fn without_credentials(text: &str) -> String {
    let authority_start = text.find("://").map_or(0, |scheme_end| scheme_end + 3);
    let rest = &text[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}{REDACTED}{}", &text[..authority_start], &rest[at..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn credentials_are_never_shown() {
        assert_eq!(
            without_credentials("https://user:hunter2@crm.example.com/hooks?a=b@c"),
            "https://<redacted>@crm.example.com/hooks?a=b@c"
        );
        assert_eq!(without_credentials("http://a@b@host:1"), "http://<redacted>@host:1");
        assert_eq!(without_credentials("user:hunter2@host"), "<redacted>@host");
        assert_eq!(
            without_credentials("https://crm.example.com/x@y"),
            "https://crm.example.com/x@y"
        );
        assert_eq!(without_credentials("not a url"), "not a url");
    }
}
