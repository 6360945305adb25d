//! `/settings/security/sso`: an administrator's single sign-on (OpenID Connect) settings.
//!
//! The form is a plain post to `/settings/security/sso` (303 back here, the result carried once by
//! the screen's `flash`), so the screen works without JavaScript. Hydrated, the same post goes over
//! fetch with `Accept: application/json` and the page updates in place; fields are also validated by
//! the server as they lose focus.
use std::collections::HashSet;

use leptos::{ev, html, prelude::*};

use crate::{
    api::{get_sso_settings, CheckLine, ConnectionReport, FieldMessage, SsoReply, SsoScreen, SSO_TEXT_FIELDS},
    browser::{self, CopyOutcome, SsoPostError, SSO_FORM_ACTION},
    components::{format_utc, Banner, SettingsFrame, Tone},
};

const FORBIDDEN_MESSAGE: &str = "Only administrators can change single sign-on.";
/// Ids that replies move the focus to (so a keyboard user lands on the result).
const MESSAGE_REGION_ID: &str = "sso-message";
const CHECKLIST_HEADING_ID: &str = "checklist-heading";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Text,
    Url,
    /// A textarea, one item per line.
    Lines,
}

/// How one text setting is shown. `FIELD_SPECS` covers `SSO_TEXT_FIELDS` exactly (tested below).
#[derive(Debug)]
struct FieldSpec {
    name: &'static str,
    label: &'static str,
    /// Said after the label, in lighter type.
    label_note: Option<&'static str>,
    control: Control,
    hint: Option<&'static str>,
}

const ALLOWED_LIST_HINT: &str = "One per line. Empty allows everyone your provider lets in.";

const FIELD_SPECS: &[FieldSpec] = &[
    FieldSpec {
        name: "issuer_url",
        label: "Issuer URL",
        label_note: None,
        control: Control::Url,
        hint: Some("For authentik: https://authentik.company/application/o/<application-slug>/ — copy it exactly, including the trailing slash."),
    },
    FieldSpec {
        name: "client_id",
        label: "Client ID",
        label_note: None,
        control: Control::Text,
        hint: None,
    },
    FieldSpec {
        name: "redirect_url",
        label: "Redirect URL",
        label_note: Some("optional override"),
        control: Control::Url,
        hint: Some("Leave blank to use the URL below."),
    },
    FieldSpec {
        name: "logout_url",
        label: "End session URL",
        label_note: None,
        control: Control::Url,
        hint: Some("Optional. When blank, Pulse uses the end_session_endpoint from the provider's discovery document."),
    },
    FieldSpec {
        name: "scopes",
        label: "Scopes",
        label_note: Some("space separated"),
        control: Control::Text,
        hint: Some("Must include openid. Add offline_access to keep sessions alive with refresh tokens, and groups if your provider only sends group membership when asked."),
    },
    FieldSpec {
        name: "display_name",
        label: "Button label",
        label_note: None,
        control: Control::Text,
        hint: Some("Shown on the login page."),
    },
    FieldSpec {
        name: "username_claim",
        label: "Username claim",
        label_note: None,
        control: Control::Text,
        hint: None,
    },
    FieldSpec {
        name: "email_claim",
        label: "Email claim",
        label_note: None,
        control: Control::Text,
        hint: None,
    },
    FieldSpec {
        name: "groups_claim",
        label: "Groups claim",
        label_note: None,
        control: Control::Text,
        hint: Some("A claim name or a dot path such as realm_access.roles."),
    },
    FieldSpec {
        name: "allowed_groups",
        label: "Allowed groups",
        label_note: None,
        control: Control::Lines,
        hint: Some(ALLOWED_LIST_HINT),
    },
    FieldSpec {
        name: "allowed_domains",
        label: "Allowed domains",
        label_note: None,
        control: Control::Lines,
        hint: Some(ALLOWED_LIST_HINT),
    },
    FieldSpec {
        name: "allowed_emails",
        label: "Allowed emails",
        label_note: None,
        control: Control::Lines,
        hint: Some(ALLOWED_LIST_HINT),
    },
    FieldSpec {
        name: "admin_groups",
        label: "Admin groups",
        label_note: None,
        control: Control::Lines,
        hint: Some("Members of these groups become administrators; everyone else is a viewer."),
    },
    FieldSpec {
        name: "prompt",
        label: "Prompt",
        label_note: None,
        control: Control::Text,
        hint: Some("Blank: consent when offline_access is requested, otherwise none. Or: none, consent, login, select_account."),
    },
    FieldSpec {
        name: "ca_bundle",
        label: "CA bundle path",
        label_note: None,
        control: Control::Text,
        hint: Some("A PEM file with extra root certificates, for a provider with a private CA."),
    },
];

fn field_spec(name: &str) -> Option<&'static FieldSpec> {
    FIELD_SPECS.iter().find(|spec| spec.name == name)
}

/// The names a field error or a blur can be about.
fn is_form_field(name: &str) -> bool {
    name == "enabled" || name == "client_secret" || SSO_TEXT_FIELDS.contains(&name)
}

fn value_of<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The banner's tone for a reply: good news in green, everything else as an error.
fn reply_tone(reply: &SsoReply) -> Tone {
    match reply.outcome.as_str() {
        "saved" | "unchanged" | "secret_cleared" => Tone::Success,
        "tested" if reply.report.as_ref().is_some_and(|report| report.passed) => Tone::Success,
        _ => Tone::Error,
    }
}

fn post_error_message(error: SsoPostError) -> &'static str {
    match error {
        SsoPostError::Network => "Pulse could not be reached. Check your connection and try again.",
        SsoPostError::SignedOut => "Your session has ended. Reload the page and sign in again; nothing was saved.",
        SsoPostError::Unreadable { status: 403 } => {
            "Pulse refused this request. Reload the page and try again; only administrators can change single sign-on."
        }
        SsoPostError::Unreadable { .. } => {
            "Pulse sent an answer this page could not read. Reload the page and try again; if it persists, check the Pulse log."
        }
    }
}

/// Text for `inner_html` of a textarea: the browser decodes it back to exactly `value`.
fn escape_html(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// "Test connection: all checks passed" / "Test connection: 2 problems found".
fn checklist_heading(report: &ConnectionReport) -> String {
    if report.passed {
        return "Test connection: all checks passed".to_owned();
    }
    let count = |status: &str| report.lines.iter().filter(|line| line.status == status).count();
    let problems = match count("failed") {
        0 => count("warning").max(1),
        failed => failed,
    };
    let noun = if problems == 1 { "problem" } else { "problems" };
    format!("Test connection: {problems} {noun} found")
}

/// The mark and the word a screen reader says for a checklist line's status.
fn check_mark(status: &str) -> (&'static str, &'static str) {
    match status {
        "passed" => ("✓", "Passed"),
        "failed" => ("✗", "Failed"),
        "warning" => ("!", "Warning"),
        _ => ("–", "Skipped"),
    }
}

/// What the fields are drawn with: the saved settings, or what a no-JavaScript post held.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldValues {
    enabled: bool,
    /// Every name of `SSO_TEXT_FIELDS`.
    values: Vec<(String, String)>,
}

impl FieldValues {
    fn saved(screen: &SsoScreen) -> Self {
        FieldValues {
            enabled: screen.enabled,
            values: screen
                .fields
                .iter()
                .map(|field| (field.name.clone(), field.value.clone()))
                .collect(),
        }
    }

    /// After a post that did not save, the form shows again what the user had typed (a field the
    /// environment manages was not posted, so it keeps the saved value).
    fn after_post(screen: &SsoScreen, flash: Option<&SsoReply>) -> Self {
        let saved = Self::saved(screen);
        let Some(flash) = flash.filter(|f| !matches!(f.outcome.as_str(), "saved" | "unchanged" | "secret_cleared"))
        else {
            return saved;
        };
        let posted = &flash.values;
        let enabled_posted = screen.enabled_managed_by.is_none()
            && (value_of(posted, "enabled_present").is_some() || value_of(posted, "enabled").is_some());
        FieldValues {
            enabled: if enabled_posted {
                value_of(posted, "enabled") == Some("true")
            } else {
                saved.enabled
            },
            values: screen
                .fields
                .iter()
                .map(|field| {
                    let typed = value_of(posted, &field.name).filter(|_| field.managed_by.is_none());
                    (field.name.clone(), typed.unwrap_or(&field.value).to_owned())
                })
                .collect(),
        }
    }

    fn get(&self, name: &str) -> String {
        value_of(&self.values, name).unwrap_or_default().to_owned()
    }
}

/// The editor's state. Fields are uncontrolled inputs drawn from `drawn`; whenever the saved
/// screen is replaced (after save, clear or reset) `generation` changes and the fields are drawn
/// again from scratch, which also makes the new values what a Reset returns to.
#[derive(Clone, Copy)]
struct SsoForm {
    saved: RwSignal<SsoScreen>,
    drawn: StoredValue<FieldValues>,
    generation: RwSignal<u64>,
    errors: RwSignal<Vec<FieldMessage>>,
    /// Fields that have lost focus at least once; their errors are shown.
    touched: RwSignal<HashSet<String>>,
    /// After a submit every field's errors are shown.
    all_touched: RwSignal<bool>,
    report: RwSignal<Option<ConnectionReport>>,
    banner: RwSignal<Option<(Tone, String)>>,
    /// The intent of the submit in flight (save, test, clear_secret).
    pending: RwSignal<Option<String>>,
    /// The Admin groups textarea's current content, for the "everyone is an admin" warning.
    admin_groups: RwSignal<String>,
    /// Numbers the posts, so a late inline validation never overwrites a newer answer.
    last_post: StoredValue<u64>,
    form: NodeRef<html::Form>,
}

impl SsoForm {
    fn new(mut screen: SsoScreen) -> Self {
        let flash = screen.flash.take();
        let drawn = FieldValues::after_post(&screen, flash.as_ref());
        let admin_groups = drawn.get("admin_groups");
        let after_submit = flash.is_some();
        let (banner, errors, report) = match flash {
            Some(flash) => (
                Some((reply_tone(&flash), flash.message.clone())).filter(|(_, message)| !message.is_empty()),
                flash.errors,
                flash.report,
            ),
            None => (None, Vec::new(), None),
        };
        SsoForm {
            saved: RwSignal::new(screen),
            drawn: StoredValue::new(drawn),
            generation: RwSignal::new(0),
            all_touched: RwSignal::new(after_submit),
            errors: RwSignal::new(errors),
            touched: RwSignal::new(HashSet::new()),
            report: RwSignal::new(report),
            banner: RwSignal::new(banner),
            pending: RwSignal::new(None),
            admin_groups: RwSignal::new(admin_groups),
            last_post: StoredValue::new(0),
            form: NodeRef::new(),
        }
    }

    /// The error shown next to `name`, if it has one and the user has been there (tracked).
    fn error_for(self, name: &str) -> Option<String> {
        let visible = self.all_touched.get() || self.touched.with(|touched| touched.contains(name));
        if !visible {
            return None;
        }
        self.errors.with(|errors| {
            let messages: Vec<&str> = errors
                .iter()
                .filter(|error| error.field == name)
                .map(|error| error.message.as_str())
                .collect();
            (!messages.is_empty()).then(|| messages.join(" "))
        })
    }

    /// Whether a submit is in flight (tracked, for the buttons' `disabled`).
    fn submitting(self) -> bool {
        self.pending.with(Option::is_some)
    }

    /// The same, read from an event handler or a task.
    fn submitting_now(self) -> bool {
        self.pending.with_untracked(Option::is_some)
    }

    /// Draws the fields again from `screen` and makes it the saved state.
    fn show_saved(self, screen: SsoScreen) {
        let drawn = FieldValues::saved(&screen);
        self.admin_groups.set(drawn.get("admin_groups"));
        self.drawn.set_value(drawn);
        self.saved.set(screen);
        self.generation.update(|generation| *generation += 1);
    }

    /// The Reset button: the native reset restores what the fields were drawn with; going back to
    /// the saved settings also drops what a no-JavaScript post had put back into them.
    fn reset(self) {
        self.errors.set(Vec::new());
        self.touched.set(HashSet::new());
        self.all_touched.set(false);
        self.report.set(None);
        self.banner.set(None);
        let screen = self.saved.get_untracked();
        self.show_saved(screen);
    }

    /// Posts the form with `intent` over fetch and applies the answer.
    fn post(self, intent: String) {
        let is_submit = intent != "validate";
        let Some(body) = browser::form_body_with_intent(&self.form, &intent) else {
            if is_submit {
                let message = "This page could not read its own form. Reload the page and try again.";
                self.banner.set(Some((Tone::Error, message.to_owned())));
            }
            return;
        };
        let number = self.last_post.get_value() + 1;
        self.last_post.set_value(number);
        if is_submit {
            self.pending.set(Some(intent.clone()));
        }
        leptos::task::spawn_local(async move {
            let answer = browser::post_sso_form(body).await;
            // The page may have been left meanwhile; its state is gone then.
            let Some(latest) = self.last_post.try_get_value() else {
                return;
            };
            if is_submit {
                self.pending.try_set(None);
                match answer {
                    Ok(reply) => self.apply_submit(&intent, reply),
                    Err(error) => {
                        self.banner
                            .try_set(Some((Tone::Error, post_error_message(error).to_owned())));
                        browser::focus_soon(MESSAGE_REGION_ID);
                    }
                }
            } else if latest == number && !self.submitting_now() {
                if let Ok(reply) = answer {
                    self.apply_validation(reply);
                }
            }
        });
    }

    fn apply_validation(self, reply: SsoReply) {
        if matches!(reply.outcome.as_str(), "forbidden" | "unauthenticated") {
            self.banner.set(Some((Tone::Error, reply.message)));
            return;
        }
        self.errors.set(reply.errors);
    }

    fn apply_submit(self, intent: &str, reply: SsoReply) {
        let tone = reply_tone(&reply);
        self.all_touched.set(true);
        self.errors.set(reply.errors);
        let has_report = reply.report.is_some();
        self.report.set(reply.report);
        self.banner
            .set(Some((tone, reply.message)).filter(|(_, message)| !message.is_empty()));
        if let Some(screen) = reply.screen {
            self.show_saved(*screen);
        }
        if intent == "test" && has_report {
            browser::focus_soon(CHECKLIST_HEADING_ID);
        } else {
            browser::focus_soon(MESSAGE_REGION_ID);
        }
    }
}

#[component]
pub fn SsoPage() -> impl IntoView {
    let screen = Resource::new(|| (), |_| get_sso_settings());
    view! {
        <SettingsFrame
            title="Single sign-on (OIDC)"
            intro="Let people sign in to Pulse with your identity provider (authentik, Keycloak, Entra ID, …) over OpenID Connect."
        >
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match screen.await {
                        Ok(screen) => view! { <SsoEditor screen=screen/> }.into_any(),
                        Err(error) => {
                            let text = error.to_string();
                            let (tone, message) = if text.contains("forbidden") {
                                (Tone::Info, FORBIDDEN_MESSAGE)
                            } else if text.contains("unauthenticated") {
                                (Tone::Error, "Your session has ended. Reload the page and sign in again.")
                            } else {
                                (Tone::Error, "Pulse could not read the single sign-on settings. Reload the page; if this persists, check the Pulse log.")
                            };
                            view! { <Banner tone=tone message=message testid="sso-banner"/> }.into_any()
                        }
                    }
                })}
            </Suspense>
        </SettingsFrame>
    }
}

#[component]
fn SsoEditor(screen: SsoScreen) -> impl IntoView {
    let state = SsoForm::new(screen);

    let on_submit = move |ev: ev::SubmitEvent| {
        // Hydrated: post over fetch and update in place. Without JavaScript this never runs and
        // the browser posts the form itself.
        ev.prevent_default();
        if state.submitting_now() {
            return;
        }
        let intent = browser::submitter_value(&ev)
            .filter(|intent| matches!(intent.as_str(), "save" | "test" | "clear_secret"))
            .unwrap_or_else(|| "save".to_owned());
        state.post(intent);
    };
    let on_focusout = move |ev: ev::FocusEvent| {
        let Some(name) = browser::focus_target_name(&ev).filter(|name| is_form_field(name)) else {
            return;
        };
        state.touched.update(|touched| {
            touched.insert(name);
        });
        if !state.submitting_now() && !browser::focus_moves_to_button(&ev) {
            state.post("validate".to_owned());
        }
    };
    let on_reset = move |_: ev::Event| state.reset();

    let saving = move || state.pending.with(|p| p.as_deref() == Some("save"));
    let testing = move || state.pending.with(|p| p.as_deref() == Some("test"));

    view! {
        {move || state.saved.with(status_line)}
        <div class="form-message" id=MESSAGE_REGION_ID tabindex="-1" aria-live="polite">
            {move || state.banner.get().map(|(tone, message)| view! { <Banner tone=tone message=message testid="sso-banner"/> })}
        </div>
        <form
            class="sso-form"
            method="post"
            action=SSO_FORM_ACTION
            data-testid="sso-form"
            node_ref=state.form
            on:submit=on_submit
            on:focusout=on_focusout
            on:reset=on_reset
        >
            // Pressing Enter in a field submits with the form's first submit button: make that
            // Save, not "Clear stored secret" further down.
            <button type="submit" name="intent" value="save" class="implicit-submit" tabindex="-1" aria-hidden="true"
                disabled=move || state.submitting()>"Save"</button>
            <For each=move || [state.generation.get()] key=|generation| *generation children=move |_| view! { <Fieldsets state=state/> }/>
            <div class="form-actions">
                <button type="submit" name="intent" value="save" class="button button-primary"
                    disabled=move || state.submitting() aria-busy=move || saving().then_some("true")>
                    {move || if saving() { "Saving…" } else { "Save" }}
                </button>
                <button type="submit" name="intent" value="test" class="button button-secondary"
                    disabled=move || state.submitting() aria-busy=move || testing().then_some("true")>
                    {move || testing().then(|| view! { <span class="spinner" aria-hidden="true"></span> })}
                    {move || if testing() { "Testing…" } else { "Test connection" }}
                </button>
                <button type="reset" class="button button-secondary" disabled=move || state.submitting()>"Reset"</button>
                <span class="hint actions-hint">"Test connection checks the values in the form, saved or not."</span>
            </div>
        </form>
        <div class="checklist-region" aria-live="polite">
            {move || state.report.get().map(|report| view! { <Checklist report=report/> })}
        </div>
    }
}

/// Whether single sign-on is in force, and if not, why.
fn status_line(screen: &SsoScreen) -> AnyView {
    if screen.active {
        let verified = screen.verified_at.map(|at| {
            view! { <span class="muted">"Last passed Test connection: "{format_utc(at)}</span> }
        });
        view! {
            <p class="sso-status sso-status-on" data-testid="sso-status">
                <span class="status-dot" aria-hidden="true"></span>
                <span>"Single sign-on is on."</span>
                {verified}
            </p>
        }
        .into_any()
    } else if screen.enabled {
        let problems = screen
            .problems
            .iter()
            .map(|problem| view! { <li>{problem.message.clone()}</li> })
            .collect_view();
        let (class, role) = Tone::Warning.banner_class_and_role();
        view! {
            <div class=class role=role data-testid="sso-status">
                <p class="banner-title">
                    {if screen.problems.is_empty() {
                        "Single sign-on is enabled but not in force. Save the settings again, or check the Pulse log."
                    } else {
                        "Single sign-on is off because:"
                    }}
                </p>
                {(!screen.problems.is_empty()).then(|| view! { <ul>{problems}</ul> })}
            </div>
        }
        .into_any()
    } else {
        view! {
            <p class="sso-status" data-testid="sso-status">
                <span class="status-dot status-dot-off" aria-hidden="true"></span>
                <span>"Single sign-on is off."</span>
            </p>
        }
        .into_any()
    }
}

/// The four groups of fields, drawn from `state.drawn` and the saved screen.
#[component]
fn Fieldsets(state: SsoForm) -> impl IntoView {
    let screen = state.saved.get_untracked();
    let drawn = state.drawn.get_value();
    let field = |name: &'static str| {
        let managed_by = screen
            .fields
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.managed_by.clone());
        field_spec(name)
            // Erased: the whole form as one nested type is too deep for the release build.
            .map(|spec| {
                view! { <SettingField spec=spec value=drawn.get(name) managed_by=managed_by state=state/> }.into_any()
            })
    };
    let provider_head = (field("issuer_url"), field("client_id"));
    let redirect = field("redirect_url");
    let provider_tail = (field("logout_url"), field("scopes"), field("display_name"));
    let claims = (field("username_claim"), field("email_claim"), field("groups_claim"));
    let access = (
        field("allowed_groups"),
        field("allowed_domains"),
        field("allowed_emails"),
        field("admin_groups"),
    );
    let advanced = (field("ca_bundle"), field("prompt"));
    view! {
        <fieldset>
            <legend>"Provider"</legend>
            <EnabledField enabled=drawn.enabled managed_by=screen.enabled_managed_by.clone() state=state/>
            {provider_head}
            <SecretField set=screen.secret_set managed_by=screen.secret_managed_by.clone() state=state/>
            {redirect}
            <RedirectSent
                url=screen.redirect_url_sent.clone()
                source=screen.redirect_url_source.clone()
                warning=screen.redirect_url_warning.clone()
            />
            {provider_tail}
        </fieldset>
        <fieldset>
            <legend>"Claim mapping"</legend>
            {claims}
        </fieldset>
        <fieldset>
            <legend>"Access"</legend>
            {access}
            {move || state.admin_groups.with(|groups| groups.trim().is_empty()).then(|| {
                let (class, _) = Tone::Warning.banner_class_and_role();
                view! {
                    <p class=class id="admin_groups-warning" data-testid="admin-groups-warning">
                        "No admin groups are set: every user allowed in by single sign-on becomes a Pulse administrator."
                    </p>
                }
            })}
        </fieldset>
        <fieldset>
            <legend>"Advanced"</legend>
            {advanced}
        </fieldset>
    }
    .into_any()
}

/// `aria-describedby` from the ids that always apply plus the error's while there is one.
fn described_by(
    static_ids: Vec<String>,
    name: &'static str,
    has_error: Memo<bool>,
) -> impl Fn() -> Option<String> + Clone + Send + Sync + 'static {
    move || {
        let mut ids = static_ids.clone();
        if has_error.get() {
            ids.push(format!("{name}-error"));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    }
}

/// The error line under a field, present only while there is an error to show.
#[component]
fn FieldError(name: &'static str, error: Memo<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|message| {
            view! { <p id=format!("{name}-error") class="field-error" role="alert">{message}</p> }
        })
    }
}

/// "Managed by VAR": the field is set by the environment and read-only here.
#[component]
fn ManagedLine(name: &'static str, var: String) -> impl IntoView {
    view! {
        <p id=format!("{name}-managed") class="managed" data-testid=format!("managed-{name}")>
            "Managed by "<code>{var}</code>
        </p>
    }
}

#[component]
fn SettingField(spec: &'static FieldSpec, value: String, managed_by: Option<String>, state: SsoForm) -> impl IntoView {
    let name = spec.name;
    let error = Memo::new(move |_| state.error_for(name));
    let has_error = Memo::new(move |_| error.with(Option::is_some));
    let managed = managed_by.is_some();
    let static_ids: Vec<String> = [
        spec.hint.map(|_| format!("{name}-hint")),
        managed.then(|| format!("{name}-managed")),
        (name == "redirect_url").then(|| "redirect_url-sent".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let describedby = described_by(static_ids, name, has_error);
    let invalid = move || has_error.get().then_some("true");
    // URLs are plain text inputs with a URL keyboard: the server's messages ("must use https://")
    // say more than the browser's own URL check, and one source of messages keeps them consistent.
    let input_mode = (spec.control == Control::Url).then_some("url");
    let control = match spec.control {
        Control::Lines => view! {
            <textarea
                id=name
                name=name
                rows="3"
                spellcheck="false"
                autocapitalize="none"
                disabled=managed
                aria-invalid=invalid
                aria-describedby=describedby
                inner_html=escape_html(&value)
                on:input=move |ev| {
                    if name == "admin_groups" {
                        state.admin_groups.set(event_target_value(&ev));
                    }
                }
            ></textarea>
        }
        .into_any(),
        Control::Text | Control::Url => view! {
            <input
                id=name
                name=name
                type="text"
                inputmode=input_mode
                value=value
                autocomplete="off"
                spellcheck="false"
                autocapitalize="none"
                disabled=managed
                aria-invalid=invalid
                aria-describedby=describedby
            />
        }
        .into_any(),
    };
    view! {
        <div class="field" class:field-invalid=move || has_error.get()>
            <label for=name>
                {spec.label}
                {spec.label_note.map(|note| view! { <span class="label-note">{format!(" ({note})")}</span> })}
            </label>
            {control}
            <FieldError name=name error=error/>
            {spec.hint.map(|hint| view! { <p id=format!("{name}-hint") class="hint">{hint}</p> })}
            {managed_by.map(|var| view! { <ManagedLine name=name var=var/> })}
        </div>
    }
}

#[component]
fn EnabledField(enabled: bool, managed_by: Option<String>, state: SsoForm) -> impl IntoView {
    let name = "enabled";
    let error = Memo::new(move |_| state.error_for(name));
    let has_error = Memo::new(move |_| error.with(Option::is_some));
    let managed = managed_by.is_some();
    let static_ids: Vec<String> = managed.then(|| "enabled-managed".to_owned()).into_iter().collect();
    let describedby = described_by(static_ids, name, has_error);
    view! {
        <div class="field field-checkbox" class:field-invalid=move || has_error.get()>
            // Tells the server the box was on the form, so an unticked box means "off". A managed
            // box is not posted at all, and neither is this.
            {(!managed).then(|| view! { <input type="hidden" name="enabled_present" value="1"/> })}
            <label class="checkbox" for="enabled">
                <input
                    type="checkbox"
                    id="enabled"
                    name="enabled"
                    value="true"
                    checked=enabled
                    disabled=managed
                    aria-invalid=move || has_error.get().then_some("true")
                    aria-describedby=describedby
                />
                "Enable single sign-on"
            </label>
            <FieldError name=name error=error/>
            {managed_by.map(|var| view! { <ManagedLine name=name var=var/> })}
        </div>
    }
}

/// The client secret is write-only: the page only says whether one is stored.
#[component]
fn SecretField(set: bool, managed_by: Option<String>, state: SsoForm) -> impl IntoView {
    let name = "client_secret";
    let error = Memo::new(move |_| state.error_for(name));
    let has_error = Memo::new(move |_| error.with(Option::is_some));
    let managed = managed_by.is_some();
    let static_ids: Vec<String> = std::iter::once("client_secret-state".to_owned())
        .chain(managed.then(|| "client_secret-managed".to_owned()))
        .collect();
    let describedby = described_by(static_ids, name, has_error);
    view! {
        <div class="field" class:field-invalid=move || has_error.get()>
            <label for="client_secret">"Client secret"</label>
            <p class="secret-state" id="client_secret-state">
                "Stored secret: "<strong data-testid="secret-state">{if set { "Set" } else { "Not set" }}</strong>
            </p>
            <div class="secret-row">
                <input
                    type="password"
                    id="client_secret"
                    name="client_secret"
                    value=""
                    autocomplete="new-password"
                    placeholder=set.then_some("Leave blank to keep the stored secret")
                    disabled=managed
                    aria-invalid=move || has_error.get().then_some("true")
                    aria-describedby=describedby
                />
                {(set && !managed).then(|| view! {
                    <button type="submit" name="intent" value="clear_secret" formnovalidate
                        class="button button-secondary" disabled=move || state.submitting()>
                        "Clear stored secret"
                    </button>
                })}
            </div>
            <FieldError name=name error=error/>
            {managed_by.map(|var| view! { <ManagedLine name=name var=var/> })}
        </div>
    }
}

/// The redirect URL Pulse actually sends, to register at the provider, with a Copy button once
/// the page is hydrated (copying needs JavaScript; without it the URL is plain selectable text).
#[component]
fn RedirectSent(url: String, source: String, warning: Option<String>) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let copy_status = RwSignal::new(None::<&'static str>);
    let copy = {
        let url = url.clone();
        move |_: ev::MouseEvent| {
            copy_status.set(None);
            browser::copy_text(&url, "redirect_url-sent", move |outcome| {
                copy_status.try_set(Some(match outcome {
                    CopyOutcome::Copied => "Copied",
                    CopyOutcome::Selected => {
                        "Copying is not available here: the URL is selected, press Ctrl+C to copy it."
                    }
                    CopyOutcome::Failed => "Could not copy: select the URL and copy it.",
                }));
            });
        }
    };
    view! {
        <div class="redirect-sent">
            <p class="redirect-line">
                <span>"Pulse sends this redirect URL: "</span>
                <code id="redirect_url-sent" data-testid="redirect-url-sent">{url}</code>
                {move || hydrated.get().then(|| {
                    let copy = copy.clone();
                    view! { <button type="button" class="button button-secondary button-small" on:click=copy>"Copy"</button> }
                })}
                <span class="copy-status" role="status" data-testid="copy-status">{move || copy_status.get()}</span>
            </p>
            <p class="hint">"Register exactly this URL at your provider."</p>
            {redirect_source_note(&source).map(|note| view! { <p class="hint">{note}</p> })}
            {warning.map(|warning| {
                let (class, role) = Tone::Warning.banner_class_and_role();
                view! { <div class=class role=role data-testid="redirect-url-warning">{warning}</div> }
            })}
        </div>
    }
}

/// Where the redirect URL comes from, when that matters for keeping it stable.
fn redirect_source_note(source: &str) -> Option<&'static str> {
    match source {
        "configured" => Some("It is the Redirect URL set above."),
        "public_url" => Some("It is derived from Pulse's public URL (PULSE_PUBLIC_URL)."),
        "request" => Some("It is derived from the address this page was opened with; set PULSE_PUBLIC_URL so it does not change with how Pulse is reached."),
        _ => None,
    }
}

#[component]
fn Checklist(report: ConnectionReport) -> impl IntoView {
    let heading = checklist_heading(&report);
    view! {
        <section class="checklist-panel" aria-labelledby=CHECKLIST_HEADING_ID>
            <h2 id=CHECKLIST_HEADING_ID tabindex="-1">{heading}</h2>
            <ul class="checklist" data-testid="checklist">
                {report.lines.into_iter().map(|line| view! { <CheckItem line=line/> }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn CheckItem(line: CheckLine) -> impl IntoView {
    let (mark, word) = check_mark(&line.status);
    view! {
        <li data-status=line.status.clone() data-check=line.id class=format!("check check-{}", line.status)>
            <span class="check-mark" aria-hidden="true">{mark}</span>
            <span class="sr-only">{format!("{word}: ")}</span>
            <div class="check-text">
                <strong>{line.label}</strong>
                " "
                <span class="check-detail">{line.detail}</span>
                {line.fix.map(|fix| view! { <p class="hint">{fix}</p> })}
            </div>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SsoField;

    fn screen() -> SsoScreen {
        SsoScreen {
            enabled: true,
            enabled_managed_by: None,
            fields: SSO_TEXT_FIELDS
                .iter()
                .map(|name| SsoField {
                    name: (*name).to_owned(),
                    value: format!("saved {name}"),
                    managed_by: (*name == "client_id").then(|| "PULSE_OIDC_CLIENT_ID".to_owned()),
                })
                .collect(),
            secret_set: true,
            secret_managed_by: None,
            redirect_url_sent: "https://pulse.example/api/oidc/callback".into(),
            redirect_url_source: "public_url".into(),
            redirect_url_warning: None,
            active: true,
            problems: Vec::new(),
            verified_at: None,
            flash: None,
        }
    }

    fn reply(outcome: &str, values: &[(&str, &str)]) -> SsoReply {
        SsoReply {
            intent: "save".into(),
            outcome: outcome.into(),
            message: "m".into(),
            errors: Vec::new(),
            report: None,
            values: values.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            screen: None,
        }
    }

    #[test]
    fn every_text_field_has_exactly_one_spec_in_screen_order() {
        let names: Vec<&str> = FIELD_SPECS.iter().map(|spec| spec.name).collect();
        assert_eq!(names, SSO_TEXT_FIELDS);
    }

    #[test]
    fn a_post_that_did_not_save_shows_what_was_typed_except_managed_fields() {
        let flash = reply(
            "invalid",
            &[
                ("enabled_present", "1"),
                ("issuer_url", "typed"),
                ("client_id", "ignored"),
            ],
        );
        let drawn = FieldValues::after_post(&screen(), Some(&flash));
        assert!(!drawn.enabled, "an unticked box was posted");
        assert_eq!(drawn.get("issuer_url"), "typed");
        assert_eq!(drawn.get("client_id"), "saved client_id");
        assert_eq!(drawn.get("scopes"), "saved scopes");
    }

    #[test]
    fn a_post_that_saved_shows_the_saved_values() {
        let flash = reply("saved", &[("issuer_url", "typed")]);
        let drawn = FieldValues::after_post(&screen(), Some(&flash));
        assert_eq!(drawn, FieldValues::saved(&screen()));
    }

    #[test]
    fn tone_follows_the_outcome_and_the_report() {
        assert_eq!(reply_tone(&reply("saved", &[])), Tone::Success);
        assert_eq!(reply_tone(&reply("invalid", &[])), Tone::Error);
        let mut tested = reply("tested", &[]);
        tested.report = Some(ConnectionReport {
            passed: false,
            lines: Vec::new(),
        });
        assert_eq!(reply_tone(&tested), Tone::Error);
        tested.report = Some(ConnectionReport {
            passed: true,
            lines: Vec::new(),
        });
        assert_eq!(reply_tone(&tested), Tone::Success);
    }

    #[test]
    fn checklist_heading_counts_failures() {
        let line = |status: &str| CheckLine {
            id: "x".into(),
            label: "X".into(),
            status: status.into(),
            detail: String::new(),
            fix: None,
        };
        let report = |passed, statuses: &[&str]| ConnectionReport {
            passed,
            lines: statuses.iter().map(|s| line(s)).collect(),
        };
        assert_eq!(
            checklist_heading(&report(true, &["passed", "warning"])),
            "Test connection: all checks passed"
        );
        assert_eq!(
            checklist_heading(&report(false, &["passed", "failed", "skipped"])),
            "Test connection: 1 problem found"
        );
        assert_eq!(
            checklist_heading(&report(false, &["failed", "failed", "warning"])),
            "Test connection: 2 problems found"
        );
    }

    #[test]
    fn textarea_content_is_escaped() {
        assert_eq!(
            escape_html("a<b>&c\n</textarea>"),
            "a&lt;b&gt;&amp;c\n&lt;/textarea&gt;"
        );
    }
}

/// Server-rendered HTML, the page as a browser without JavaScript gets it.
#[cfg(all(test, feature = "ssr"))]
mod render_tests {
    use super::*;
    use crate::api::SsoField;

    fn render(screen: SsoScreen) -> String {
        Owner::new().with(|| view! { <SsoEditor screen=screen/> }.to_html())
    }

    fn screen_after_failed_test() -> SsoScreen {
        let value = |name: &str| match name {
            "allowed_groups" => "staff</textarea>\nops & dev".to_owned(),
            "admin_groups" => String::new(),
            _ => format!("saved-{name}"),
        };
        SsoScreen {
            enabled: true,
            enabled_managed_by: None,
            fields: SSO_TEXT_FIELDS
                .iter()
                .map(|name| SsoField {
                    name: (*name).to_owned(),
                    value: value(name),
                    managed_by: (*name == "client_id").then(|| "PULSE_OIDC_CLIENT_ID".to_owned()),
                })
                .collect(),
            secret_set: true,
            secret_managed_by: None,
            redirect_url_sent: "https://pulse.example/api/oidc/callback".into(),
            redirect_url_source: "public_url".into(),
            redirect_url_warning: None,
            active: false,
            problems: vec![FieldMessage {
                field: "issuer_url".into(),
                message: "The issuer URL is required.".into(),
            }],
            verified_at: None,
            flash: Some(SsoReply {
                intent: "test".into(),
                outcome: "tested".into(),
                message: "Test connection found a problem.".into(),
                errors: vec![FieldMessage {
                    field: "scopes".into(),
                    message: "The scopes must include openid.".into(),
                }],
                report: Some(ConnectionReport {
                    passed: false,
                    lines: vec![CheckLine {
                        id: "discovery".into(),
                        label: "Discovery".into(),
                        status: "failed".into(),
                        detail: "404".into(),
                        fix: Some("Check the issuer URL.".into()),
                    }],
                }),
                values: vec![
                    ("enabled_present".into(), "1".into()),
                    ("enabled".into(), "true".into()),
                    ("issuer_url".into(), "https://typed.example/".into()),
                ],
                screen: None,
            }),
        }
    }

    #[test]
    fn without_javascript_the_flash_fills_the_form() {
        let html = render(screen_after_failed_test());
        assert!(html.contains(
            r#"id="issuer_url" name="issuer_url" type="text" inputmode="url" value="https://typed.example/""#
        ));
        assert!(html.contains(r#"value="saved-scopes""#));
        assert!(html.contains(r#"aria-invalid="true" aria-describedby="scopes-hint scopes-error""#));
        assert!(html
            .contains(r#"<p id="scopes-error" role="alert" class="field-error">The scopes must include openid.</p>"#));
        assert!(
            html.contains(r#"data-testid="sso-banner" class="banner banner-error">Test connection found a problem."#)
        );
        assert!(html.contains(r#"<li data-status="failed""#));
        assert!(html.contains("Test connection: 1 problem found"));
        assert!(html.contains("Single sign-on is off because:"));
    }

    #[test]
    fn managed_fields_are_disabled_and_explained() {
        let html = render(screen_after_failed_test());
        assert!(html.contains(r#"disabled aria-describedby="client_id-managed""#));
        assert!(html.contains(r#"data-testid="managed-client_id""#));
        assert!(!html.contains(
            r#"value="https://typed.example/" autocomplete="off" spellcheck="false" autocapitalize="none" disabled"#
        ));
    }

    #[test]
    fn lists_and_secret_are_rendered_safely() {
        let html = render(screen_after_failed_test());
        assert!(html.contains("staff&lt;/textarea&gt;\nops &amp; dev</textarea>"));
        assert!(html.contains(r#"data-testid="admin-groups-warning""#));
        assert!(html.contains(r#"<strong data-testid="secret-state">Set</strong>"#));
        assert!(html.contains(r#"name="client_secret" value="""#));
        assert!(html.contains(r#"value="clear_secret" formnovalidate"#));
    }
}
