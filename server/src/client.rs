//! Who is on the other end: the client IP and whether it reached us over HTTPS. Forwarded headers
//! are believed only from proxies listed in PULSE_TRUSTED_PROXY_CIDRS.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;

use crate::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    pub ip: IpAddr,
    /// The browser's connection to us (or to our trusted proxy) is HTTPS.
    pub https: bool,
    pub user_agent: Option<String>,
    ip_text: String,
}

impl ClientContext {
    pub fn ip_string(&self) -> String {
        self.ip.to_string()
    }

    /// What the core records with a session. Borrowing keeps the strings where they are.
    pub fn info(&self) -> pulse_core::auth::ClientInfo<'_> {
        pulse_core::auth::ClientInfo {
            ip: self.ip_str(),
            user_agent: self.user_agent.as_deref(),
        }
    }

    fn ip_str(&self) -> &str {
        &self.ip_text
    }
}

/// Works out the client's IP: the peer address, or — when the peer is a trusted proxy — the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> ClientContext {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if !is_trusted(&peer) {
        return ClientContext {
            ip: peer,
            https: false,
            user_agent,
            ip_text: peer.to_string(),
        };
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| item.trim().parse::<IpAddr>().ok())
        .collect();
    let ip = forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .copied()
        .unwrap_or(peer);
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| {
            proto
                .split(',')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        });
    ClientContext {
        ip,
        https,
        user_agent,
        ip_text: ip.to_string(),
    }
}

/// Puts a `ClientContext` in the request's extensions; marks cookies `Secure` for HTTPS clients.
pub async fn client_context(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let context = resolve(peer, request.headers(), &state.core.config.trusted_proxies);
    let https = context.https;
    let origin = crate::oidc::base_url(&state, request.headers(), &context);
    request.extensions_mut().insert(pulse_core::oidc::RequestOrigin(origin));
    request.extensions_mut().insert(context);
    let mut response = next.run(request).await;
    // The session layer marks cookies Secure when the public URL is https; a request that came
    // over https through a trusted proxy deserves the same even without a configured public URL.
    if https && !state.core.config.public_url_is_https() {
        let cookies: Vec<HeaderValue> = response.headers().get_all(header::SET_COOKIE).iter().cloned().collect();
        if !cookies.is_empty() {
            response.headers_mut().remove(header::SET_COOKIE);
            for cookie in cookies {
                let secured = match cookie.to_str() {
                    Ok(text) if !text.contains("; Secure") => {
                        HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
                    }
                    _ => cookie,
                };
                response.headers_mut().append(header::SET_COOKIE, secured);
            }
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn forwarded_headers_are_ignored_from_untrusted_peers() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let context = resolve(
            peer,
            &headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "https")]),
            &[],
        );
        assert_eq!((context.ip, context.https), (peer, false));
    }

    #[test]
    fn trusted_proxy_yields_the_rightmost_untrusted_address() -> Result<(), Box<dyn std::error::Error>> {
        let trusted = vec!["10.0.0.0/8".parse::<IpNet>()?];
        let context = resolve(
            "10.0.0.2".parse()?,
            &headers(&[
                ("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.5"),
                ("x-forwarded-proto", "https"),
            ]),
            &trusted,
        );
        // 6.6.6.6 could have been forged by the client; 198.51.100.7 is what our proxy saw.
        assert_eq!((context.ip, context.https), ("198.51.100.7".parse()?, true));
        Ok(())
    }
}
