//! The WebAssembly entry point: hydrates the pages the server rendered. Nothing else lives here.
#![forbid(unsafe_code)]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(pulse_app::App);
}
