//! What only the hydrated page does in the browser: calling the JSON API, posting the SSO form
//! over fetch, the clipboard, focus and navigation.
//! The server build gets inert twins so the components compile unchanged on both sides.
use leptos::{
    ev::{FocusEvent, SubmitEvent},
    html,
    prelude::NodeRef,
};

use crate::api::{ApiErrorBody, LoginRequest, SsoReply};

/// The outcome of a sign-in attempt made from the hydrated login form.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum LoginReply {
    SignedIn,
    Refused {
        code: String,
        remaining: Option<i64>,
        retry_after: Option<i64>,
    },
}

#[cfg(feature = "hydrate")]
pub async fn post_login(request: &LoginRequest) -> LoginReply {
    use gloo_net::http::Request;
    let refused = |code: &str| LoginReply::Refused {
        code: code.to_owned(),
        remaining: None,
        retry_after: None,
    };
    let Ok(builder) = Request::post("/api/login").json(request) else {
        return refused("internal");
    };
    let Ok(response) = builder.send().await else {
        return refused("network");
    };
    if response.ok() {
        return LoginReply::SignedIn;
    }
    match response.json::<ApiErrorBody>().await {
        Ok(body) => LoginReply::Refused {
            code: body.error,
            remaining: body.remaining,
            retry_after: body.retry_after,
        },
        Err(_) if response.status() == 429 => refused("rate_limited"),
        Err(_) => refused("internal"),
    }
}

#[cfg(not(feature = "hydrate"))]
pub async fn post_login(_request: &LoginRequest) -> LoginReply {
    let _ = std::marker::PhantomData::<ApiErrorBody>;
    LoginReply::Refused {
        code: "internal".into(),
        remaining: None,
        retry_after: None,
    }
}

/// A full page load, so the next page renders on the server with the new session.
pub fn go_to(url: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign(url);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = url;
}

/// Marks the document as hydrated; end-to-end tests wait for it before clicking.
pub fn mark_hydrated() {
    #[cfg(feature = "hydrate")]
    if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

/// Where the SSO settings form posts (the same URL serves the no-JavaScript form post).
pub const SSO_FORM_ACTION: &str = "/settings/security/sso";

/// Why a fetch post of the SSO form brought back no `SsoReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum SsoPostError {
    /// The request did not reach Pulse (offline, connection refused).
    Network,
    /// Pulse answered 401, or redirected the request (to the login page): the session is gone.
    SignedOut,
    /// An answer that is not an `SsoReply` (a proxy's error page, a 403 of the same-origin check).
    Unreadable { status: u16 },
}

/// The `value` of the button that submitted the form (`intent` of the SSO form).
pub fn submitter_value(ev: &SubmitEvent) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        ev.submitter().and_then(|button| button.get_attribute("value"))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        None
    }
}

/// Whether focus is moving to a button (a click on Save or Test connection). Inline validation
/// then waits: its answer could move the button between the press and the release of the click,
/// and the submit validates everything anyway.
pub fn focus_moves_to_button(ev: &FocusEvent) -> bool {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        ev.related_target()
            .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|element| element.tag_name().eq_ignore_ascii_case("button"))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        false
    }
}

/// The `name` of the form control that just lost focus.
pub fn focus_target_name(ev: &FocusEvent) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let target = ev.target()?.dyn_into::<web_sys::Element>().ok()?;
        target.get_attribute("name")
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        None
    }
}

/// The form's current content as an `application/x-www-form-urlencoded` body, plus `intent`.
/// Disabled controls (settings managed by the environment) are left out, as a browser would.
pub fn form_body_with_intent(form: &NodeRef<html::Form>, intent: &str) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        use leptos::prelude::GetUntracked;
        let form = form.get_untracked()?;
        let data = web_sys::FormData::new_with_form(&form).ok()?;
        let params = web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data).ok()?;
        params.append("intent", intent);
        Some(String::from(params.to_string()))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (form, intent);
        None
    }
}

/// Posts the SSO form asking for JSON; the answer is an `SsoReply` whatever the status
/// (200, 422, 401, 403).
#[cfg(feature = "hydrate")]
pub async fn post_sso_form(body: String) -> Result<SsoReply, SsoPostError> {
    use gloo_net::http::Request;
    let request = Request::post(SSO_FORM_ACTION)
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .map_err(|_| SsoPostError::Network)?;
    let response = request.send().await.map_err(|_| SsoPostError::Network)?;
    let status = response.status();
    match response.json::<SsoReply>().await {
        Ok(reply) => Ok(reply),
        Err(_) if status == 401 || response.redirected() => Err(SsoPostError::SignedOut),
        Err(_) => Err(SsoPostError::Unreadable { status }),
    }
}

#[cfg(not(feature = "hydrate"))]
pub async fn post_sso_form(body: String) -> Result<SsoReply, SsoPostError> {
    let _ = body;
    Err(SsoPostError::Network)
}

/// How a Copy button's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum CopyOutcome {
    Copied,
    /// No clipboard access (plain http, a refused permission): the text is selected instead, so
    /// Ctrl+C copies it.
    Selected,
    Failed,
}

/// Copies `text` to the clipboard; where the Clipboard API is unavailable (it needs a secure
/// context, and Pulse is often reached over plain http on a LAN) selects the element with id
/// `element_id` instead. `done` is called once with the outcome.
pub fn copy_text(text: &str, element_id: &str, done: impl FnOnce(CopyOutcome) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use std::{cell::RefCell, rc::Rc};
        use wasm_bindgen::{closure::Closure, JsValue};

        let Some(window) = web_sys::window() else {
            return done(CopyOutcome::Failed);
        };
        let navigator = window.navigator();
        // `navigator.clipboard` is undefined outside secure contexts; calling into it would throw.
        let has_clipboard = web_sys::js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard"))
            .map(|clipboard| !clipboard.is_undefined() && !clipboard.is_null())
            .unwrap_or(false);
        if !has_clipboard {
            return done(select_contents(element_id));
        }
        let done = Rc::new(RefCell::new(Some(done)));
        let finish = move |outcome: CopyOutcome| {
            let callback = done.borrow_mut().take();
            if let Some(callback) = callback {
                callback(outcome);
            }
        };
        let on_copied = {
            let finish = finish.clone();
            Closure::once(move |_: JsValue| finish(CopyOutcome::Copied))
        };
        let on_refused = {
            let element_id = element_id.to_owned();
            Closure::once(move |_: JsValue| finish(select_contents(&element_id)))
        };
        let _ = navigator.clipboard().write_text(text).then2(&on_copied, &on_refused);
        // The promise settles once and calls one of them; the other stays a few bytes of garbage
        // per click, which is cheaper than tracking it.
        on_copied.forget();
        on_refused.forget();
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (text, element_id);
        drop(done);
    }
}

#[cfg(feature = "hydrate")]
fn select_contents(element_id: &str) -> CopyOutcome {
    let selected = web_sys::window().and_then(|window| {
        let element = window.document()?.get_element_by_id(element_id)?;
        let selection = window.get_selection().ok()??;
        selection.select_all_children(&element).ok()
    });
    if selected.is_some() {
        CopyOutcome::Selected
    } else {
        CopyOutcome::Failed
    }
}

/// Moves focus to the element with this id once the pending DOM updates are applied (its
/// content may be rendered by the same reactive update that asks for the focus).
pub fn focus_soon(element_id: &'static str) {
    #[cfg(feature = "hydrate")]
    leptos::prelude::request_animation_frame(move || {
        use wasm_bindgen::JsCast;
        let element = web_sys::window()
            .and_then(|window| window.document())
            .and_then(|document| document.get_element_by_id(element_id))
            .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(element) = element {
            let _ = element.focus();
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = element_id;
}
