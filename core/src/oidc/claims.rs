//! From verified claims to a Pulse identity: claim mapping (with dot paths) and the access policy.
use serde_json::{Map, Value};

use super::{settings::OidcSettings, OidcErrorCode};

/// Who the provider says the user is, after mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedIdentity {
    pub subject: String,
    pub username: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub is_admin: bool,
}

/// Looks up `path` (`realm_access.roles`) in the claims; a literal key containing dots wins.
pub fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn claim_string(claims: &Map<String, Value>, path: &str) -> Option<String> {
    match claim(claims, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Groups as a JSON array of strings, or one string delimited by commas, semicolons or spaces.
fn claim_groups(claims: &Map<String, Value>, path: &str) -> Option<Vec<String>> {
    match claim(claims, path)? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s.trim().to_owned()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        Value::String(s) => Some(
            s.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

/// Whether any mapped claim is absent, so userinfo should be asked.
pub fn needs_userinfo(claims: &Map<String, Value>, settings: &OidcSettings) -> bool {
    [&settings.username_claim, &settings.email_claim, &settings.groups_claim]
        .iter()
        .any(|path| claim(claims, path).is_none())
}

/// Maps the claims and applies the allow-lists; a configured list whose claim is missing fails.
pub fn map_and_authorize(
    claims: &Map<String, Value>,
    settings: &OidcSettings,
) -> Result<MappedIdentity, OidcErrorCode> {
    let subject = claim_string(claims, "sub").ok_or(OidcErrorCode::InvalidIdToken)?;
    let email = claim_string(claims, &settings.email_claim);
    let username = claim_string(claims, &settings.username_claim)
        .or_else(|| email.clone())
        .unwrap_or_else(|| subject.clone());
    let groups = claim_groups(claims, &settings.groups_claim);

    if !settings.allowed_emails.is_empty() {
        let allowed = email
            .as_deref()
            .is_some_and(|e| settings.allowed_emails.iter().any(|a| a.eq_ignore_ascii_case(e)));
        if !allowed {
            return Err(OidcErrorCode::EmailRestricted);
        }
    }
    if !settings.allowed_domains.is_empty() {
        let domain = email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
        let allowed = domain.is_some_and(|d| {
            settings
                .allowed_domains
                .iter()
                .any(|a| a.trim_start_matches('@').eq_ignore_ascii_case(d))
        });
        if !allowed {
            return Err(OidcErrorCode::DomainRestricted);
        }
    }
    let in_any = |wanted: &[String]| {
        groups
            .as_ref()
            .is_some_and(|have| have.iter().any(|g| wanted.iter().any(|w| w.eq_ignore_ascii_case(g))))
    };
    if !settings.allowed_groups.is_empty() && !in_any(&settings.allowed_groups) {
        return Err(OidcErrorCode::GroupRestricted);
    }
    let is_admin = settings.admin_groups.is_empty() || in_any(&settings.admin_groups);
    Ok(MappedIdentity {
        subject,
        username,
        email,
        groups: groups.unwrap_or_default(),
        is_admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn username_falls_back_to_email_then_sub() {
        let s = OidcSettings::default();
        let full = claims(json!({"sub": "u1", "preferred_username": "alice", "email": "a@x.io"}));
        assert_eq!(map_and_authorize(&full, &s).map(|i| i.username), Ok("alice".into()));
        let no_name = claims(json!({"sub": "u1", "email": "a@x.io"}));
        assert_eq!(map_and_authorize(&no_name, &s).map(|i| i.username), Ok("a@x.io".into()));
        let bare = claims(json!({"sub": "u1"}));
        assert_eq!(map_and_authorize(&bare, &s).map(|i| i.username), Ok("u1".into()));
        assert_eq!(
            map_and_authorize(&claims(json!({})), &s),
            Err(OidcErrorCode::InvalidIdToken)
        );
    }

    #[test]
    fn groups_from_arrays_strings_and_dot_paths() {
        let mut s = OidcSettings::default();
        let array = claims(json!({"sub": "1", "groups": ["Admins", "ops"]}));
        assert_eq!(
            map_and_authorize(&array, &s).map(|i| i.groups),
            Ok(vec!["Admins".into(), "ops".into()])
        );
        let string = claims(json!({"sub": "1", "groups": "admins, ops;sre dev"}));
        assert_eq!(map_and_authorize(&string, &s).map(|i| i.groups.len()), Ok(4));
        s.groups_claim = "realm_access.roles".into();
        let nested = claims(json!({"sub": "1", "realm_access": {"roles": ["pulse-admin"]}}));
        assert_eq!(
            map_and_authorize(&nested, &s).map(|i| i.groups),
            Ok(vec!["pulse-admin".into()])
        );
        s.groups_claim = "resource_access.pulse.roles".into();
        let client_roles = claims(json!({"sub": "1", "resource_access": {"pulse": {"roles": ["viewer"]}}}));
        assert_eq!(
            map_and_authorize(&client_roles, &s).map(|i| i.groups),
            Ok(vec!["viewer".into()])
        );
    }

    #[test]
    fn allowed_emails_are_exact_and_case_insensitive() {
        let s = OidcSettings {
            allowed_emails: vec!["Alice@Example.com".into()],
            ..OidcSettings::default()
        };
        assert!(map_and_authorize(&claims(json!({"sub": "1", "email": "alice@example.COM"})), &s).is_ok());
        let other = claims(json!({"sub": "1", "email": "alice@example.com.evil.org"}));
        assert_eq!(map_and_authorize(&other, &s), Err(OidcErrorCode::EmailRestricted));
        assert_eq!(
            map_and_authorize(&claims(json!({"sub": "1"})), &s),
            Err(OidcErrorCode::EmailRestricted)
        );
    }

    #[test]
    fn allowed_domains_match_the_part_after_the_last_at() {
        let s = OidcSettings {
            allowed_domains: vec!["example.com".into()],
            ..OidcSettings::default()
        };
        assert!(map_and_authorize(&claims(json!({"sub": "1", "email": "a@EXAMPLE.com"})), &s).is_ok());
        for evil in [
            "a@example.com.evil.org",
            "a@sub.example.com",
            "example.com@evil.org",
            "a@evil.org",
        ] {
            let verdict = map_and_authorize(&claims(json!({"sub": "1", "email": evil})), &s);
            assert_eq!(verdict, Err(OidcErrorCode::DomainRestricted), "{evil}");
        }
        assert_eq!(
            map_and_authorize(&claims(json!({"sub": "1"})), &s),
            Err(OidcErrorCode::DomainRestricted)
        );
    }

    #[test]
    fn allowed_groups_fail_closed_and_decide_admin() {
        let s = OidcSettings {
            allowed_groups: vec!["pulse-users".into()],
            admin_groups: vec!["Pulse-Admins".into()],
            ..OidcSettings::default()
        };
        let user = claims(json!({"sub": "1", "groups": ["PULSE-USERS"]}));
        assert_eq!(map_and_authorize(&user, &s).map(|i| i.is_admin), Ok(false));
        let admin = claims(json!({"sub": "1", "groups": ["pulse-users", "pulse-admins"]}));
        assert_eq!(map_and_authorize(&admin, &s).map(|i| i.is_admin), Ok(true));
        let outsider = claims(json!({"sub": "1", "groups": ["other"]}));
        assert_eq!(map_and_authorize(&outsider, &s), Err(OidcErrorCode::GroupRestricted));
        assert_eq!(
            map_and_authorize(&claims(json!({"sub": "1"})), &s),
            Err(OidcErrorCode::GroupRestricted)
        );
    }

    #[test]
    fn without_admin_groups_every_allowed_user_is_admin() {
        let s = OidcSettings::default();
        assert_eq!(
            map_and_authorize(&claims(json!({"sub": "1"})), &s).map(|i| i.is_admin),
            Ok(true)
        );
    }
}
